"""The Gradio chat page: one module per job (:mod:`.choice`, :mod:`.overview`, :mod:`.chat`, :mod:`.documents`),
:mod:`.history` (what the browser keeps to find its conversation again) and :mod:`.layout` (the page put together)."""

from bot.web.page.layout import ChatPage, build_ui, page_assets

__all__ = ["ChatPage", "build_ui", "page_assets"]
