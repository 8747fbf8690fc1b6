"""The page's chat: a question streamed into a cited answer beside its sources, the caller's stored conversations
(past ones listed, one reopened after a reload, a restart or on another replica), and votes on answers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import gradio as gr

from bot.access.owners import conversation_owner
from bot.access.policy import allowed
from bot.access.readable_turns import readable_answer
from bot.answer.citations import Answer
from bot.documents.indexed import surrounding_text
from bot.state.conversations import ConversationNotFoundError, ConversationStore
from bot.state.database import DatabaseError
from bot.state.feedback import FeedbackStore, Vote
from bot.view.render import NO_PASSAGE, Turn, answer_html, chat_messages, question_html, sources_html
from bot.web.edge import AnswerSlots
from bot.web.page.choice import NOTHING_READABLE, ChoiceEvents, Scope
from bot.web.page.history import Kept, past_list
from index.errors import StoreUnavailableError

log = logging.getLogger(__name__)

BUSY_ANSWER = "docbot is busy answering other questions right now: please ask again in a few seconds."
BUSY_SOURCES = "No sources: docbot was too busy to search the documents for this question."
EMPTY_INDEX_ANSWER = "The index is empty, so there is nothing to answer from yet: add documents in the Documents tab."
# What the chat says when answering fails: what failed and what to do, never a server path or an internal detail
# (the server log has those).
STORE_DOWN_ANSWER = (
    "The document store is unavailable right now, so nothing can be searched. Please ask again in a moment: "
    "answers resume as soon as it is back."
)
STORE_DOWN_SOURCES = (
    "No sources: the document store is unavailable, so no passage could be searched. "
    "Sources appear here again once it is back."
)
ANSWER_FAILED_SOURCES = "No sources: answering this question failed."


def answer_failure(exc: Exception) -> tuple[str, str]:
    """What the chat reply and the sources panel say when answering a question fails."""
    if isinstance(exc, StoreUnavailableError):
        return STORE_DOWN_ANSWER, STORE_DOWN_SOURCES
    return f"Sorry, answering failed ({type(exc).__name__}); the server log has the details.", ANSWER_FAILED_SOURCES


def vote_of(liked: bool | str) -> Vote:
    """Gradio's like payload → a vote: True is up, False is down, anything else withdraws the vote."""
    if liked is True or liked == "Like":
        return "up"
    if liked is False or liked == "Dislike":
        return "down"
    return "cleared"


class ChatEvents(ChoiceEvents):
    """The chat's events. State set by :class:`bot.web.page.layout.ChatPage`."""

    conversations: ConversationStore
    votes: FeedbackStore
    slots: AnswerSlots

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
