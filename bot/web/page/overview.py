"""The page's overview: the status line, example questions, the documents table, the upload form or a note saying
why there is none, what this caller may remove, the collection picker and the filter chips; shown when the page
loads and after every change.
"""

from __future__ import annotations

import logging
from typing import Any

import gradio as gr

from bot.access.policy import allowed
from bot.documents.examples import example_questions
from bot.documents.indexed import list_documents
from bot.state.database import DatabaseError
from bot.state.uploads import UploadStore
from bot.view.render import documents_html, notice_html, status_html, store_down_html
from bot.web.page.choice import NOTHING_READABLE, ChoiceEvents
from index.errors import StoreUnavailableError
from index.filters import chips
from index.protocols import Store

log = logging.getLogger(__name__)

#: How many passages the example questions are drawn from.
EXAMPLE_PASSAGES = 400
WELCOME = (
    "<div class='welcome'><b>Ask a question about the documents.</b><br>"
    "Every answer cites its passages: click a [1] marker to see the sentence in its document.</div>"
)
EMPTY_WELCOME = (
    "<div class='welcome'><b>The index is empty.</b><br>Add documents in the <b>Documents</b> tab, "
    "then ask a question here.</div>"
)


class NothingReadableError(Exception):
    """The picked collections are none the caller may read (the overview then shows nothing of them)."""


class OverviewEvents(ChoiceEvents):
    """The overview's event (the page's load, and the step after each change). State set by
    :class:`bot.web.page.layout.ChatPage`."""

    uploads: UploadStore
    _examples: dict[str, tuple[int, list[str]]]

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
