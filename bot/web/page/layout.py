"""The Gradio chat page put together: :class:`ChatPage` (every event handler, one module per job: :mod:`.choice`,
:mod:`.overview`, :mod:`.chat`, :mod:`.documents`) and the layout wired to it (:func:`build_ui`): a collection
picker, a Chat tab (streamed, cited answers beside a sources panel, past conversations, feedback) and a Documents
tab (list, upload, remove).

Every string from a document or a question reaches the browser escaped (see :mod:`bot.view.render`); the
only script on the page is ``static/page.js`` (see :func:`page_assets`), which makes an ``[n]`` marker show its
source and open the cited document (the evidence viewer) inside that source's card.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gradio as gr

from bot.access.policy import Access
from bot.answer.chat import Bot
from bot.config import Settings
from bot.documents.changes import DocumentChanges
from bot.documents.upload_inbox import UploadInbox
from bot.state.stores import Stores
from bot.view.render import sources_html
from bot.web.edge import AnswerSlots
from bot.web.embed import STATIC
from bot.web.page.chat import ChatEvents
from bot.web.page.choice import Choice
from bot.web.page.documents import DocumentEvents, given_paths
from bot.web.page.history import browser_state
from bot.web.page.overview import WELCOME, OverviewEvents
from index.loaders import SUPPORTED_SUFFIXES
from index.pipeline import Indexer

if TYPE_CHECKING:
    from bot.documents.library import Library

#: Asks before a document is removed; the handler gets no key when the person cancels.
#: The question box gets the focus once it is enabled (autofocus would act on the disabled box).
FOCUS_QUESTION_JS = "() => { document.querySelector('#docbot-question textarea')?.focus(); }"
CONFIRM_REMOVE_JS = "(key) => (key && window.confirm('Remove this document from the index?')) ? key : null"


def page_assets() -> dict[str, str]:
    """The page's CSS and head script from ``bot/web/static/page.css`` and ``page.js``, for ``gr.mount_gradio_app``
    (Gradio 6 takes them there); read when the app is built, not at import."""
    script = (STATIC / "page.js").read_text(encoding="utf-8")
    return {"css": (STATIC / "page.css").read_text(encoding="utf-8"), "head": f"<script>\n{script}</script>"}


class ChatPage(OverviewEvents, ChatEvents, DocumentEvents):
    """The page's behaviour: each method is one event handler, free of layout."""

    def __init__(
        self,
        bot: Bot,
        settings: Settings,
        indexer: Indexer,
        inbox: UploadInbox,
        access: Access,
        state: Stores,
        slots: AnswerSlots | None = None,
        library: Library | None = None,
    ) -> None:
        """``state``: the process's stores (conversations, votes, uploads); ``library``: every collection, for the
        collection picker; without it the page serves ``bot`` alone."""
        self.bot = bot
        self.conversations = state.conversations
        self.votes = state.feedback
        self.uploads = state.uploads
        self.settings = settings
        self.indexer = indexer
        self.inbox = inbox
        self.changes = DocumentChanges(inbox, self.uploads)
        self.access = access
        self.library = library
        self.slots = slots or AnswerSlots(settings.max_concurrent_answers)
        self._examples: dict[str, tuple[int, list[str]]] = {}
        self._choices: OrderedDict[str, Choice] = OrderedDict()
        self._choices_lock = threading.Lock()


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
    state: Stores,
    library: Library | None = None,
) -> gr.Blocks:
    """The page: a collection picker, a Chat tab (the conversation beside its sources, past conversations below it)
    and a Documents tab (list, upload, remove), both following the picked collections."""
    page = ChatPage(bot, settings, indexer, inbox, access, state, slots, library)
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

    # preprocess=False: the handler gets the paths as sent and checks each one itself (bot.documents.upload_inbox);
    # Gradio's preprocessing would also leave an empty temporary file in the upload cache for every file.
    docs.add.click(upload, [docs.files], [docs.files, docs.upload_report], concurrency_limit=1, preprocess=False).then(
        page.overview, None, overview, show_progress="hidden"
    )
    docs.remove.click(
        page.remove, [docs.to_remove], [docs.remove_report], js=CONFIRM_REMOVE_JS, concurrency_limit=1
    ).then(page.overview, None, overview, show_progress="hidden")
