"""The Gradio chat page: streamed, cited answers beside a sources panel, a documents view, feedback.

Every string from a document or a question reaches the browser escaped (see :mod:`bot.view.render`); the
only script on the page is ``static/page.js`` (see :func:`page_assets`), which makes an ``[n]`` marker show its
source and open the cited document (the evidence viewer) inside that source's card.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr

from bot.access.owners import conversation_owner
from bot.access.policy import POLICY, Access, BadCredentialsError, Identity, allowed, readable_collections
from bot.access.readable_turns import readable_answer
from bot.answer.chat import Bot
from bot.answer.citations import Answer
from bot.config import Settings
from bot.documents.examples import example_questions
from bot.documents.indexed import (
    UploadRefusedError,
    delete_chunks,
    list_documents,
    remove_document,
    sanitise_filename,
    surrounding_text,
)
from bot.documents.upload_inbox import UploadInbox, given_paths, session_key
from bot.documents.upload_records import keep_indexed
from bot.documents.upload_staging import Staged, stage_upload
from bot.state.conversations import ConversationNotFoundError, ConversationStore
from bot.state.database import Database, DatabaseError
from bot.state.feedback import FeedbackStore
from bot.state.grants import Right
from bot.state.uploads import Upload, UploadStore
from bot.view.render import (
    NO_PASSAGE,
    Turn,
    answer_html,
    chat_messages,
    documents_html,
    failure_html,
    notice_html,
    question_html,
    removed_html,
    report_html,
    sources_html,
    status_html,
    store_down_html,
)
from bot.web.edge import AnswerSlots
from bot.web.feedback import vote_of
from bot.web.page_failures import (
    REMOVE_DATABASE_DOWN,
    REMOVE_STORE_DOWN,
    UPLOAD_DATABASE_DOWN,
    answer_failure,
    upload_failure,
)
from bot.web.page_history import Kept, browser_state, past_list
from index.errors import IndexRunError, StoreUnavailableError
from index.filters import Filter, FilterError, chips
from index.loaders import SUPPORTED_SUFFIXES
from index.pipeline import Indexer, index_lock
from index.protocols import Store

if TYPE_CHECKING:
    from bot.documents.library import Library

log = logging.getLogger(__name__)

#: Page sessions whose picked collections and filter chips are kept (the oldest are forgotten first).
MAX_SESSIONS = 10_000

NOTHING_READABLE = "There is nothing here you may read: an administrator can grant you a collection."


class NothingReadableError(Exception):
    """The picked collections are none the caller may read (the overview then shows nothing of them)."""


#: How many passages the example questions are drawn from.
EXAMPLE_PASSAGES = 400
BUSY_ANSWER = "docbot is busy answering other questions right now: please ask again in a few seconds."
BUSY_SOURCES = "No sources: docbot was too busy to search the documents for this question."
EMPTY_INDEX_ANSWER = "The index is empty, so there is nothing to answer from yet: add documents in the Documents tab."
WELCOME = (
    "<div class='welcome'><b>Ask a question about the documents.</b><br>"
    "Every answer cites its passages: click a [1] marker to see the sentence in its document.</div>"
)
EMPTY_WELCOME = (
    "<div class='welcome'><b>The index is empty.</b><br>Add documents in the <b>Documents</b> tab, "
    "then ask a question here.</div>"
)


#: The chat page's stylesheet and its one script (read by :func:`page_assets`).
STATIC = Path(__file__).with_name("static")
#: Asks before a document is removed; the handler gets no key when the person cancels.
#: The question box gets the focus once it is enabled (autofocus would act on the disabled box).
FOCUS_QUESTION_JS = "() => { document.querySelector('#docbot-question textarea')?.focus(); }"
CONFIRM_REMOVE_JS = "(key) => (key && window.confirm('Remove this document from the index?')) ? key : null"


def page_assets() -> dict[str, str]:
    """The page's CSS and head script from ``static/page.css`` and ``static/page.js``, for ``gr.mount_gradio_app``
    (Gradio 6 takes them there); read when the app is built, not at import."""
    script = (STATIC / "page.js").read_text(encoding="utf-8")
    return {"css": (STATIC / "page.css").read_text(encoding="utf-8"), "head": f"<script>\n{script}</script>"}


@dataclass(frozen=True)
class Scope:
    """What one page event works on: the picked collections' bot, and the first one's documents (listed, added to,
    removed from) with its settings (where its uploads and their records live)."""

    names: list[str]
    bot: Bot
    store: Store
    settings: Settings
    indexer: Indexer
    where: Filter | None = None
    stores: dict[str, Store] = field(default_factory=dict)  # each picked collection's store


@dataclass(frozen=True)
class Choice:
    """What a page session picked: collections and filter chips."""

    names: tuple[str, ...] = ()
    chips: tuple[str, ...] = ()


class ChatPage:
    """The page's behaviour: each method is one event handler, free of layout."""

    def __init__(
        self,
        bot: Bot,
        settings: Settings,
        indexer: Indexer,
        inbox: UploadInbox,
        access: Access,
        database: Database,
        slots: AnswerSlots | None = None,
        library: Library | None = None,
    ) -> None:
        """``library``: every collection, for the collection picker; without it the page serves ``bot`` alone."""
        self.bot = bot
        self.conversations = ConversationStore(database)
        self.votes = FeedbackStore(database)
        self.uploads = UploadStore(database)
        self.settings = settings
        self.indexer = indexer
        self.inbox = inbox
        self.access = access
        self.library = library
        self.slots = slots or AnswerSlots(settings.max_concurrent_answers)
        self._examples: dict[str, tuple[int, list[str]]] = {}
        self._choices: OrderedDict[str, Choice] = OrderedDict()
        self._choices_lock = threading.Lock()

    @property
    def store(self) -> Store:
        return self.bot.retriever.store

    # --- the picked collections and filter chips, per page session --------------------------------

    def readable(self, identity: Identity | None) -> list[str]:
        if self.library is None:
            return [self.settings.default_collection]
        try:
            names = self.library.collections.listed()
        except StoreUnavailableError:  # the store is down: the default collection's answer will say so
            names = [self.settings.default_collection]
        return readable_collections(identity, names)

    def _choice(self, request: gr.Request) -> Choice:
        with self._choices_lock:
            return self._choices.get(request.session_hash or "", Choice())

    def _remember(self, request: gr.Request, choice: Choice) -> None:
        with self._choices_lock:
            self._choices[request.session_hash or ""] = choice
            self._choices.move_to_end(request.session_hash or "")
            while len(self._choices) > MAX_SESSIONS:
                self._choices.popitem(last=False)

    def pick(self, names: list[str] | str | None, request: gr.Request) -> None:
        """The picker changed: remember the collections (only readable ones count, checked again at each use)."""
        picked = [names] if isinstance(names, str) else list(names or [])
        self._remember(request, Choice(tuple(picked), self._choice(request).chips))

    def filter_chips(self, values: list[str] | None, request: gr.Request) -> str:
        """The filter chips changed: remember them; a chip that is not a filter is reported (and ignored)."""
        chips_given = tuple(str(v) for v in values or [])
        self._remember(request, Choice(self._choice(request).names, chips_given))
        try:
            self._filter(chips_given)
        except FilterError as exc:
            return notice_html(f"That filter is ignored: {exc}.")
        return ""

    @staticmethod
    def _filter(chips_given: tuple[str, ...]) -> Filter | None:
        if not chips_given:
            return None
        data: dict[str, list[str]] = {}
        for chip in chips_given:
            key, sep, value = chip.replace(":", "=", 1).partition("=")
            if not sep:
                raise FilterError(f"{chip!r} is not key=value (type=pdf, tag=hr, path=policies/, after=2025-01-01)")
            data.setdefault(key.strip().lower(), []).append(value.strip())
        return Filter.of(data)

    def scope(self, request: gr.Request) -> Scope:
        """The collections this session picked that its caller may read (the default collection when none)."""
        choice = self._choice(request)
        try:
            where = self._filter(choice.chips)
        except FilterError:
            where = None
        if self.library is None:
            return Scope([self.settings.default_collection], self.bot, self.store, self.settings, self.indexer, where)
        readable = self.readable(self.who(request))
        names = [name for name in dict.fromkeys(choice.names) if name in readable]
        if not names:
            default = self.settings.default_collection
            names = [default if default in readable or not readable else readable[0]]
        first = self.library.services(names[0])
        stores: dict[str, Store] = {name: self.library.services(name).store for name in names}
        return Scope(names, self.library.bot(names), first.store, first.settings, first.indexer, where, stores)

    def who(self, request: gr.Request) -> Identity | None:
        """The caller's identity from the request that started this event (never from what the page says)."""
        raw = request.request  # None only when called in-process: no credentials, so the anonymous role
        headers, cookies = (raw.headers, raw.cookies) if raw else ({}, {})
        try:
            return self.access.identify(headers, cookies)
        except BadCredentialsError:
            return None

    @staticmethod
    def may(identity: Identity | None, action: str, scope: Scope) -> bool:
        """May ``identity`` do ``action`` on the picked collections: every one to read or ask, the first (where
        documents are listed, added and removed) to change documents."""
        names = scope.names if POLICY[action] is Right.read else scope.names[:1]
        return bool(names) and all(allowed(identity, action, name) for name in names)

    def add_note(self, identity: Identity | None, scope: Scope) -> str:
        """Why this caller sees no upload form, and how to get one ("" when they may upload)."""
        if self.may(identity, "upload", scope):
            return ""
        if identity is not None and not identity.anonymous:
            return notice_html(
                f"You are signed in as {identity.name} ({identity.role.name}): adding documents needs "
                "an editor or the administrator."
            )
        if self.access.login_configured:  # Gradio's login form when everybody signs in, /signin when the page is open
            return notice_html(
                "Adding documents needs an editor or the administrator: sign in at /signin with such an account."
            )
        return notice_html(
            "Adding documents needs an editor: the operator gives people accounts with DOCBOT_USERS (or sets "
            "DOCBOT_ANONYMOUS_ROLE=admin on a one-person install)."
        )

    # --- overview: header, examples, documents -------------------------------------------------

    def examples(self, chunks: int, store: Store | None = None, collection: str = "") -> list[str]:
        """Example questions of a collection, recomputed only when it changes size."""
        store = store or self.store
        cached = self._examples.get(collection)
        if cached is None or cached[0] != chunks:
            passages = []
            for _, text, meta in store.iter_all(with_text=True):
                passages.append((str(meta.get("title", "")), text or ""))
                if len(passages) >= EXAMPLE_PASSAGES:
                    break
            cached = self._examples[collection] = (chunks, example_questions(passages))
        return cached[1]

    def overview(self, request: gr.Request) -> tuple[Any, ...]:
        """Status line, chat examples, documents table, the upload form or a note, what this caller may remove, the
        collection picker and the filter chips."""
        scope = self.scope(request)
        models = (self.bot.generator_name, self.bot.retriever.embedder.name)
        identity = self.who(request)
        readable = self.readable(identity)
        picker = gr.Dropdown(choices=readable, value=scope.names, visible=len(readable) > 1, multiselect=True)
        offered: list[str] = []
        try:
            if not self.may(identity, "read", scope):  # nothing of a collection this caller may not read
                raise NothingReadableError
            documents = list_documents(scope.store, scope.settings, self.uploads)
            chunks = sum(d.chunks for d in documents)
            questions = self.examples(chunks, scope.store, scope.names[0]) if chunks else []
            offered = chips(meta for _, _, meta in scope.store.iter_all(with_text=False)) if chunks else []
        except StoreUnavailableError as exc:  # the page still loads, and says why it shows no documents
            log.warning("the page's overview: %s", exc)
            where = f"at {self.settings.chroma_url}" if self.settings.chroma_url else "in the data directory"
            status = store_down_html(*models, where)
            table = notice_html("The documents cannot be listed while the vector store is unreachable.")
            documents, questions, placeholder = [], [], WELCOME
        except NothingReadableError:
            status, table = status_html(*models, 0, 0), notice_html(NOTHING_READABLE)
            documents, questions, placeholder = [], [], WELCOME
        except DatabaseError as exc:
            log.warning("the page's overview: %s", exc)
            status = status_html(*models, 0, 0)
            table = notice_html("The documents cannot be listed while the state database is unreachable.")
            documents, questions, placeholder = [], [], WELCOME
        else:
            status = status_html(*models, len(documents), chunks)
            table = documents_html(documents)
            placeholder = WELCOME if chunks else EMPTY_WELCOME
        chatbot = gr.Chatbot(examples=[{"text": q} for q in questions] or None, placeholder=placeholder)
        picked = [c for c in self._choice(request).chips]
        here = scope.names[0]
        choices = [
            (f"{d.title} ({d.source})", d.key) for d in documents if allowed(identity, "remove", here, owner=d.owner)
        ]
        note = self.add_note(identity, scope)
        return (
            status,
            chatbot,
            table,
            gr.Dropdown(choices=choices, value=None),
            gr.Column(visible=bool(choices)),
            gr.Column(visible=not note),
            gr.HTML(note, visible=bool(note)),
            picker,
            gr.Dropdown(choices=sorted(set(offered) | set(picked)), value=picked, multiselect=True),
        )

    # --- chat ------------------------------------------------------------------------------------

    def _finish(self, answer: Answer, scope: Scope) -> Turn:
        return Turn(
            answer, [surrounding_text(scope.stores.get(c.collection, scope.store), c) for c in answer.citations]
        )

    def _stored(self, answer: Answer, scope: Scope) -> Turn:
        """A stored turn as shown again: its sources' surrounding text when the store can be read, else the
        passages alone."""
        try:
            return self._finish(answer, scope)
        except StoreUnavailableError:
            return Turn(answer)

    def _owner(self, request: gr.Request, kept: Kept) -> str | None:
        """Whose conversations this caller sees and adds to; None: nobody's (they may not ask)."""
        identity = self.who(request)
        return conversation_owner(identity, kept.browser) if identity is not None and allowed(identity, "ask") else None

    def open(self, conversation: str | None, saved: object, request: gr.Request) -> tuple[Any, ...]:
        """Show one of this caller's stored conversations (None: a new one) and the list of the others:
        (browser state, turns, chatbot, sources panel, past-conversations list)."""
        kept = Kept.of(saved).showing(conversation)
        owner = self._owner(request, kept)
        turns: list[Turn] = []
        past: Any = gr.Radio(visible=False)
        try:
            if owner is not None:
                if kept.conversation is not None:
                    scope, identity = self.scope(request), self.who(request)
                    default = self.settings.default_collection
                    turns = [
                        self._stored(readable_answer(a, identity, default), scope)
                        for a in self.conversations.answers(kept.conversation, owner)
                    ]
                past = past_list(self.conversations.listed(owner), kept.conversation)
        except ConversationNotFoundError:  # not this caller's (or gone): a new conversation
            kept = kept.showing(None)
        except DatabaseError as exc:
            log.warning("the page's conversations: %s", exc)
            gr.Warning("Past conversations cannot be shown: the state database is unreachable.")
        return kept.value(), turns, chat_messages(turns), sources_html(turns), past

    def restore(self, saved: object, request: gr.Request) -> tuple[Any, ...]:
        """The conversation the browser showed last (after a reload, a restart or on another replica), then the
        question box and its button, which stay disabled until then: a question asked before the restore would
        be overwritten by it."""
        ready = (gr.Textbox(interactive=True), gr.Button(interactive=True))
        return *self.open(Kept.of(saved).conversation, saved, request), *ready

    def new_conversation(self, saved: object) -> tuple[Any, ...]:
        """(turns, chatbot, sources panel, question, browser state, past-conversations list) of a fresh start."""
        return [], [], sources_html([]), "", Kept.of(saved).showing(None).value(), gr.Radio(value=None)

    def _keep(self, answer: Answer, kept: Kept, owner: str | None) -> tuple[Any, Any]:
        """Store an answered turn (committed before the page shows it as final): (browser state, past list)."""
        if owner is None:
            return gr.skip(), gr.skip()
        try:
            try:
                conversation = self.conversations.add_turn(kept.conversation, owner, answer)
            except ConversationNotFoundError:  # signed in or out since: the turn starts a conversation of theirs
                conversation = self.conversations.add_turn(None, owner, answer)
            return kept.showing(conversation).value(), past_list(self.conversations.listed(owner), conversation)
        except DatabaseError as exc:
            log.warning("keeping a conversation turn: %s", exc)
            gr.Warning("This answer could not be saved (the state database is unreachable): it is lost on reload.")
            return gr.skip(), gr.skip()

    def _refusal(self, question: str, text: str, no_sources: str = NO_PASSAGE) -> Turn:
        answer = Answer(question=question, text=text, refused=True, generator=self.bot.generator_name)
        return Turn(answer, no_sources=no_sources)

    def respond(
        self, question: str, turns: list[Turn], saved: object, request: gr.Request
    ) -> Iterator[tuple[Any, ...]]:
        """Stream one answer: (textbox, chatbot, sources panel, turns, browser state, past-conversations list).

        The answered turn is stored in the caller's conversation before it is shown as final."""
        question = (question or "").strip()
        if not question:
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        kept = Kept.of(saved)
        owner = self._owner(request, kept)
        identity, scope = self.who(request), self.scope(request)
        if owner is None or not self.may(identity, "ask", scope):
            signed_in = identity is not None and not identity.anonymous
            refusal = NOTHING_READABLE if signed_in else "Please sign in to ask questions."
            turns = [*turns, self._refusal(question, refusal)]
            yield "", chat_messages(turns), sources_html(turns), turns, gr.skip(), gr.skip()
            return
        limit = self.settings.max_question_chars
        if len(question) > limit:
            turns = [*turns, self._refusal(question, f"Please ask in at most {limit} characters.")]
            yield "", chat_messages(turns), sources_html(turns), turns, gr.skip(), gr.skip()
            return
        with self.slots.held() as free:
            if free:
                keep = lambda answer: self._keep(answer, kept, owner)  # noqa: E731
                yield from self._answer(question, turns, keep, scope)
            else:
                turns = [*turns, self._refusal(question, BUSY_ANSWER, BUSY_SOURCES)]
                yield "", chat_messages(turns), sources_html(turns), turns, gr.skip(), gr.skip()

    def _answer(
        self, question: str, turns: list[Turn], keep: Callable[[Answer], tuple[Any, Any]], scope: Scope
    ) -> Iterator[tuple[Any, ...]]:
        history = [(t.answer.question, t.answer.text) for t in turns]
        text = ""
        try:
            if all(store.count() == 0 for store in scope.stores.values() or [scope.store]):
                turns = [*turns, self._refusal(question, EMPTY_INDEX_ANSWER)]
                yield "", chat_messages(turns), sources_html(turns), turns, gr.skip(), gr.skip()
                return
            earlier = [*chat_messages(turns), {"role": "user", "content": question_html(question)}]
            pending = '<div class="a streaming">Searching the documents…</div>'
            yield "", [*earlier, {"role": "assistant", "content": pending}], gr.skip(), turns, gr.skip(), gr.skip()
            for piece in scope.bot.stream(question, history, where=scope.where):
                if isinstance(piece, Answer):
                    saved, past = keep(piece)  # stored before it is shown as final
                    turns = [*turns, self._finish(piece, scope)]
                    yield "", chat_messages(turns), sources_html(turns), turns, saved, past
                    return
                text += piece
                streaming = [*earlier, {"role": "assistant", "content": answer_html(text, len(turns))}]
                yield "", streaming, gr.skip(), turns, gr.skip(), gr.skip()
        except Exception as exc:  # the page must stay usable whatever a backend or the store does
            log.exception("answering %r failed", question)
            turns = [*turns, self._refusal(question, *answer_failure(exc))]
            yield "", chat_messages(turns), sources_html(turns), turns, gr.skip(), gr.skip()

    def feedback(self, turns: list[Turn], saved: object, like: gr.LikeData, request: gr.Request) -> None:
        """Store a vote on an answer: one per voter and answer (a later one replaces it). The voter is who proved
        it (``user:ann``), or an anonymous or key-signed-in visitor's own browser (:func:`conversation_owner`)."""
        index = like.index if isinstance(like.index, int) else like.index[0]
        identity = self.who(request)
        if index % 2 != 1 or index // 2 >= len(turns) or identity is None or not allowed(identity, "vote"):
            return
        vote = vote_of(like.liked)
        user = None if identity.anonymous else identity.name  # who proved it, not the name typed at login
        voter = conversation_owner(identity, Kept.of(saved).browser)
        try:
            self.votes.record(turns[index // 2].answer, vote, user, voter=voter)
        except DatabaseError as exc:
            log.warning("a vote: %s", exc)
            gr.Warning("Your vote could not be saved (the state database is unreachable): please vote again later.")
            return
        if vote != "cleared":
            gr.Info("Thank you: your vote is saved.", duration=3)

    # --- documents -------------------------------------------------------------------------------

    def _stage(
        self,
        given: str,
        identity: Identity,
        session: str,
        staged: dict[str, Staged],
        scope: Scope,
        records: dict[str, Upload],
    ) -> None:
        """Put one received file in the collection's uploads folder (its previous version kept aside); refusals
        raise. ``records``: the collection's uploads (whoever received them), whose owners may replace them."""
        with self.inbox.take(given, session) as source:
            name = sanitise_filename(Path(given).name)
            if name in staged:
                raise UploadRefusedError(f"{name}: chosen twice; add one file of each name at a time")
            earlier = records.get(name)
            if earlier is not None and not allowed(identity, "replace", scope.names[0], owner=earlier.owner):
                raise UploadRefusedError(
                    f"{name}: a document of that name was added by someone else; only they or the administrator "
                    "can replace it (rename your file to add it beside theirs)"
                )
            staged[name] = stage_upload(source, name, scope.settings)

    def upload(self, files: list[str] | None, progress: gr.Progress, request: gr.Request) -> str:
        """Index the files this caller uploaded, with visible progress, keeping any replaced version until the new
        one is indexed; report what happened. Gradio's cached copies are deleted either way."""
        identity = self.who(request)
        session = session_key(request.cookies if request.request else {})
        scope = self.scope(request)
        if identity is None or not self.may(identity, "upload", scope):
            for given in files or []:
                self.inbox.discard(given, session)
            return self.add_note(identity, scope)
        if not files:
            return notice_html("Choose one or more files first.")
        try:
            records = self.uploads.records(scope.settings.collection)
        except DatabaseError as exc:  # checked before anything is staged or indexed: nothing to undo
            log.warning("an upload: %s", exc)
            for given in files:
                self.inbox.discard(given, session)
            return failure_html(UPLOAD_DATABASE_DOWN)
        staged: dict[str, Staged] = {}
        refused: list[str] = []
        for given in files:
            try:
                self._stage(given, identity, session, staged, scope, records)
            except UploadRefusedError as exc:
                refused.append(str(exc))
            finally:
                self.inbox.discard(given, session)
        if not staged:
            return report_html(None, refused)

        def on_progress(done: int, total: int, chunks: int) -> None:
            progress((done, total), desc=f"Indexing ({chunks} passages embedded)", unit="files")

        progress((0, len(staged)), desc="Indexing", unit="files")
        try:
            report = scope.indexer.run([s.target for s in staged.values()], progress=on_progress)
            self._refresh(scope)
        except (IndexRunError, StoreUnavailableError) as exc:  # a failed run, or the store down before or after it
            log.exception("indexing an upload failed")
            for done in staged.values():  # keep no file of an upload the index did not take; restore replaced ones
                done.undo()
            return failure_html(upload_failure(exc), refused)
        failed = {Path(source).name for source, _ in report.failed}
        for name, done in staged.items():
            if name in failed:  # a replacement that failed leaves the previous version, file and index
                done.undo()
            else:
                done.keep()
        owner = None if identity.anonymous else identity.name
        try:
            if keep_indexed(scope.store, scope.settings, self.uploads, report.added + report.updated, owner):
                self._refresh(scope)  # a previous version indexed by another replica went
        except DatabaseError as exc:
            log.warning("keeping an upload's record: %s", exc)
            self._drop_added(scope, report.added, staged)
            return failure_html(UPLOAD_DATABASE_DOWN, refused)
        except StoreUnavailableError:  # the new version is indexed and kept; the previous one's chunks stay listed
            log.exception("removing the previous version of a replaced upload failed")
        return report_html(report, refused)

    def _drop_added(self, scope: Scope, added: list[str], staged: dict[str, Staged]) -> None:
        """The index took these new files but their records could not be kept: they go again (chunks and file).
        A replaced document keeps its new version (the previous one is gone from the index by then)."""
        root = str(scope.settings.uploads_dir.resolve())
        with index_lock(scope.settings.data_dir):
            for source in added:
                delete_chunks(scope.store, root, source)
                staged[source].undo()
        self._refresh(scope)

    def remove(self, key: str | None, request: gr.Request) -> str:
        identity = self.who(request)
        refusal = notice_html("Removing this document needs the administrator (or the editor who uploaded it).")
        scope = self.scope(request)
        if not self.may(identity, "upload", scope):  # may write here at all: the document's owner is checked below
            return refusal
        try:
            document = next(
                (d for d in list_documents(scope.store, scope.settings, self.uploads) if d.key == key), None
            )
            if document is None:
                return notice_html("Choose a document to remove first.")
            if not allowed(identity, "remove", scope.names[0], owner=document.owner):
                return refusal
            removed = remove_document(scope.store, scope.settings, document, self.uploads)
            self._refresh(scope)
        except StoreUnavailableError:
            log.exception("removing a document failed")
            return failure_html(REMOVE_STORE_DOWN)
        except DatabaseError as exc:
            log.warning("removing a document: %s", exc)
            return failure_html(REMOVE_DATABASE_DOWN)
        return removed_html(document, removed)

    def _refresh(self, scope: Scope) -> None:
        """After the first picked collection changed: its retriever (shared by every bot that searches it)."""
        if self.library is None:
            self.bot.retriever.refresh()
        else:
            self.library.services(scope.names[0]).retriever.refresh()


def _pick_example(event: gr.SelectData) -> str:
    value = event.value
    return str(value.get("text", "")) if isinstance(value, dict) else str(value)


@dataclass
class _ChatTab:
    chatbot: gr.Chatbot
    question: gr.Textbox
    ask: gr.Button
    new: gr.Button
    sources: gr.HTML
    past: gr.Radio
    chips: gr.Dropdown
    chips_note: gr.HTML


@dataclass
class _DocumentsTab:
    table: gr.HTML
    files: gr.File
    add: gr.Button
    upload_report: gr.HTML
    uploader: gr.Column
    add_note: gr.HTML
    admin: gr.Column
    to_remove: gr.Dropdown
    remove: gr.Button
    remove_report: gr.HTML


def _chat_tab() -> _ChatTab:
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=300):
            chatbot = gr.Chatbot(
                elem_id="docbot-chat",
                show_label=False,
                height="62vh",
                min_height=320,
                render_markdown=False,
                sanitize_html=True,
                latex_delimiters=[],
                feedback_options=("Like", "Dislike"),
                group_consecutive_messages=False,
                buttons=[],  # Gradio's copy button would copy the message's HTML, not its text
                placeholder=WELCOME,
            )
            with gr.Row(equal_height=True):
                question = gr.Textbox(
                    show_label=False,
                    placeholder="Ask a question about the documents…",
                    lines=1,
                    max_lines=6,
                    scale=5,
                    min_width=160,
                    container=False,
                    elem_id="docbot-question",
                    interactive=False,  # until the page's restore step (ChatPage.restore) enables it
                )
                ask = gr.Button(
                    "Ask", variant="primary", scale=0, min_width=72, elem_id="docbot-ask", interactive=False
                )
            chips = gr.Dropdown(
                label="Only passages from",
                info="Filter chips: pick file types, tags and folders, or type one (after=2025-01-01, path=policies/).",
                choices=[],
                value=[],
                multiselect=True,
                allow_custom_value=True,
                elem_id="docbot-filters",
            )
            chips_note = gr.HTML(elem_id="docbot-filters-note", js_on_load=None)
            new = gr.Button("New conversation", size="sm", variant="secondary", elem_id="docbot-new")
            past = gr.Radio(label="Past conversations", choices=[], visible=False, elem_id="docbot-past")
        with gr.Column(scale=2, min_width=260):
            gr.HTML("<h3>Sources</h3>", js_on_load=None)
            sources = gr.HTML(sources_html([]), elem_id="docbot-sources", js_on_load=None)
    return _ChatTab(chatbot, question, ask, new, sources, past, chips, chips_note)


def _documents_tab(settings: Settings) -> _DocumentsTab:
    kinds = ", ".join(sorted(SUPPORTED_SUFFIXES))
    megabytes = settings.max_upload_bytes / (1024 * 1024)
    gr.HTML("<h3>Indexed documents</h3>", js_on_load=None)
    table = gr.HTML(elem_id="docbot-documents", js_on_load=None)
    add_note = gr.HTML(visible=False, elem_id="docbot-add-note", js_on_load=None)
    with gr.Column(visible=False, elem_id="docbot-add-documents") as uploader:  # shown to editors and admins
        gr.HTML(
            f"<h3>Add documents</h3><p class='hint'>{kinds}; up to {megabytes:g} MB each. "
            "They can be asked about as soon as they are indexed.</p>",
            js_on_load=None,
        )
        files = gr.File(
            show_label=False,
            file_count="multiple",
            file_types=sorted(SUPPORTED_SUFFIXES),
            type="filepath",
            height=140,
            elem_id="docbot-upload",
        )
        add = gr.Button("Add to the index", variant="primary", elem_id="docbot-add")
        upload_report = gr.HTML(elem_id="docbot-upload-report", js_on_load=None)
    with gr.Column(visible=False, elem_id="docbot-admin") as admin:
        gr.HTML("<h3>Remove a document</h3>", js_on_load=None)
        with gr.Row(equal_height=True):
            to_remove = gr.Dropdown(show_label=False, choices=[], value=None, scale=4, min_width=200)
            remove = gr.Button("Remove", variant="stop", scale=0, min_width=100, elem_id="docbot-remove")
        remove_report = gr.HTML(elem_id="docbot-remove-report", js_on_load=None)
    return _DocumentsTab(table, files, add, upload_report, uploader, add_note, admin, to_remove, remove, remove_report)


def build_ui(
    bot: Bot,
    settings: Settings,
    indexer: Indexer,
    inbox: UploadInbox,
    access: Access,
    slots: AnswerSlots,
    database: Database,
    library: Library | None = None,
) -> gr.Blocks:
    """The page: a collection picker, a Chat tab (the conversation beside its sources, past conversations below it)
    and a Documents tab (list, upload, remove), both following the picked collections."""
    page = ChatPage(bot, settings, indexer, inbox, access, database, slots, library)
    with gr.Blocks(title="docbot", analytics_enabled=False) as blocks:
        turns = gr.State([])
        saved = browser_state()
        gr.HTML(
            "<h1>docbot</h1><p>Answers questions about your documents, citing the passages it used.</p>",
            elem_id="docbot-title",
            js_on_load=None,
        )
        status = gr.HTML(elem_id="docbot-status-line", js_on_load=None)
        picker = gr.Dropdown(
            label="Collections",
            info="Questions go to every collection picked; the Documents tab shows the first.",
            choices=[],
            multiselect=True,
            visible=False,
            elem_id="docbot-collections",
        )
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"):
                chat = _chat_tab()
            with gr.Tab("Documents", id="documents"):
                docs = _documents_tab(settings)
        overview = [status, chat.chatbot, docs.table, docs.to_remove, docs.admin, docs.uploader, docs.add_note]
        overview += [picker, chat.chips]
        shown = [saved, turns, chat.chatbot, chat.sources, chat.past]
        blocks.load(page.overview, outputs=overview, show_progress="hidden").then(
            page.restore, [saved], [*shown, chat.question, chat.ask], show_progress="hidden"
        ).then(None, js=FOCUS_QUESTION_JS)
        reset = [turns, chat.chatbot, chat.sources, chat.question, saved, chat.past]
        picker.input(page.pick, [picker], None, show_progress="hidden").then(
            page.new_conversation, [saved], reset, show_progress="hidden"
        ).then(page.overview, None, overview, show_progress="hidden")
        chat.chips.input(page.filter_chips, [chat.chips], [chat.chips_note], show_progress="hidden")
        _wire_chat(page, chat, turns, saved)
        _wire_documents(page, docs, overview)
    return blocks.queue(max_size=settings.max_queued_events)


def _wire_chat(page: ChatPage, chat: _ChatTab, turns: gr.State, saved: gr.BrowserState) -> None:
    inputs = [chat.question, turns, saved]
    outputs = [chat.question, chat.chatbot, chat.sources, turns, saved, chat.past]
    limit = page.settings.max_concurrent_answers
    options: dict[str, Any] = {"concurrency_limit": limit, "concurrency_id": "answer", "show_progress": "hidden"}
    chat.question.submit(page.respond, inputs, outputs, **options)
    chat.ask.click(page.respond, inputs, outputs, **options)
    chat.chatbot.example_select(_pick_example, None, chat.question).then(page.respond, inputs, outputs, **options)
    chat.chatbot.like(page.feedback, [turns, saved], None)
    reset = [turns, chat.chatbot, chat.sources, chat.question, saved, chat.past]
    chat.new.click(page.new_conversation, [saved], reset, show_progress="hidden")
    chat.chatbot.clear(page.new_conversation, [saved], reset, show_progress="hidden")
    shown = [saved, turns, chat.chatbot, chat.sources, chat.past]
    chat.past.input(page.open, [chat.past, saved], shown, show_progress="hidden")


def _wire_documents(page: ChatPage, docs: _DocumentsTab, overview: list[Any]) -> None:
    def upload(
        value: object,
        request: gr.Request,
        progress: gr.Progress = gr.Progress(),  # noqa: B008
    ) -> tuple[Any, str]:
        return None, page.upload(given_paths(value), progress, request)

    # preprocess=False: the handler gets the paths as sent and checks each one itself (bot.upload_inbox); Gradio's
    # preprocessing would also leave an empty temporary file in the upload cache for every file.
    docs.add.click(upload, [docs.files], [docs.files, docs.upload_report], concurrency_limit=1, preprocess=False).then(
        page.overview, None, overview, show_progress="hidden"
    )
    docs.remove.click(
        page.remove, [docs.to_remove], [docs.remove_report], js=CONFIRM_REMOVE_JS, concurrency_limit=1
    ).then(page.overview, None, overview, show_progress="hidden")
