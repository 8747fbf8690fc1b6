"""The page's Documents tab: adding uploaded files and removing a document, adapted from Gradio's events to
:class:`bot.documents.changes.DocumentChanges` (which does the work) and rendered as HTML.
"""

from __future__ import annotations

import gradio as gr

from bot.documents.changes import DocumentChanges, Target
from bot.documents.upload_inbox import UploadInbox, session_key
from bot.view.render import failure_html, notice_html, removed_html, report_html
from bot.web.page.choice import ChoiceEvents, Scope


def given_paths(value: object) -> list[str]:
    """The paths in the upload box's value as the caller sent it (FileData objects; anything else is kept as text,
    to be refused by :meth:`UploadInbox.take` like any path this server did not receive)."""
    items = value if isinstance(value, list) else [value] if value else []
    return [str(item.get("path", "")) if isinstance(item, dict) else str(item) for item in items]


class DocumentEvents(ChoiceEvents):
    """The Documents tab's events. State set by :class:`bot.web.page.layout.ChatPage`."""

    inbox: UploadInbox
    changes: DocumentChanges

    def upload(self, files: list[str] | None, progress: gr.Progress, request: gr.Request) -> str:
        """Index the files this caller uploaded, with visible progress, keeping any replaced version until the new
        one is indexed; report what happened. Gradio's cached copies are deleted either way."""
        identity = self.who(request)
        session = session_key(request.cookies if request.request else {})
        scope = self.scope(request)
        if identity is None or not self.may(identity, "upload", scope):
            self.changes.drop(files or [], session)
            return self.add_note(identity, scope)
        if not files:
            return notice_html("Choose one or more files first.")

        def on_progress(done: int, total: int, chunks: int | None) -> None:
            desc = "Indexing" if chunks is None else f"Indexing ({chunks} passages embedded)"
            progress((done, total), desc=desc, unit="files")

        added = self.changes.add(self._target(scope), identity, files, session, on_progress)
        if added.failure is not None:
            return failure_html(added.failure, added.refused)
        return report_html(added.report, added.refused)

    def remove(self, key: str | None, request: gr.Request) -> str:
        identity = self.who(request)
        refusal = notice_html("Removing this document needs the administrator (or the editor who uploaded it).")
        scope = self.scope(request)
        if not self.may(identity, "upload", scope):  # may write here at all: the document's owner is checked below
            return refusal
        removed = self.changes.remove(self._target(scope), identity, key)
        if removed.failure is not None:
            return failure_html(removed.failure)
        if removed.document is None:
            return notice_html("Choose a document to remove first.")
        if removed.refused:
            return refusal
        return removed_html(removed.document, removed.chunks)

    def _target(self, scope: Scope) -> Target:
        """The first picked collection, where documents are added and removed."""
        return Target(scope.names[0], scope.store, scope.settings, scope.indexer, lambda: self._refresh(scope))

    def _refresh(self, scope: Scope) -> None:
        """After the first picked collection changed: its retriever (shared by every bot that searches it)."""
        if self.library is None:
            self.bot.retriever.refresh()
        else:
            self.library.services(scope.names[0]).retriever.refresh()
