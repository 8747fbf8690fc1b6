"""Composition root: settings → index → bot → FastAPI app (REST/SSE API, embed) with the Gradio page mounted.

``python app.py`` serves on the configured host and port (default http://127.0.0.1:7860).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI

from bot.config import Settings

if TYPE_CHECKING:
    from bot.upload_inbox import UploadInbox

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> FastAPI:
    """Build the whole web app; the heavy parts (embedding model, store) load here, not at import."""
    import gradio as gr

    from bot.api import install_api
    from bot.chat import Bot
    from bot.ui import build_ui, page_assets, ui_auth
    from bot.upload_inbox import InboxMiddleware

    bot = Bot.from_settings(settings)
    inbox = upload_inbox(settings)
    app = FastAPI(
        title="docbot", version="0.1.0", description="Answers questions about your documents, with cited passages."
    )
    install_api(app, bot, settings)
    app.add_middleware(InboxMiddleware, inbox=inbox)
    app.state.upload_inbox = inbox
    blocks = build_ui(bot, settings, inbox)
    gr.mount_gradio_app(
        app,
        blocks,
        path="/",
        auth=ui_auth(settings),
        max_file_size=settings.max_upload_bytes,
        server_name=settings.host,
        server_port=settings.port,
        footer_links=[],
        ssr_mode=False,
        show_error=False,  # an exception's text (a server path, say) stays in the server log
        **page_assets(),
    )
    # Gradio checks that an event's input files are in its upload folder only once the Blocks "has launched",
    # which mount_gradio_app never marks (only launch() does): mark it, so that check guards every event that
    # preprocesses files. The page's upload event skips preprocessing and checks each path itself, more strictly
    # (bot.upload_inbox: received by this server from the same session, no symlink, a regular file).
    blocks.has_launched = True
    return app


def upload_inbox(settings: Settings) -> UploadInbox:
    """Gradio's upload cache, in the data directory unless the operator chose a place (GRADIO_TEMP_DIR).

    docbot's own cache folder is emptied at start (copies left by an earlier run can never be added); a folder the
    operator chose is left as it is, since other programs may use it.
    """
    from bot.upload_inbox import UploadInbox

    own = (settings.data_dir / "gradio").resolve()
    folder = Path(os.environ.setdefault("GRADIO_TEMP_DIR", str(own))).resolve()
    inbox = UploadInbox(folder, settings.upload_cache_bytes)
    if folder == own:
        inbox.clear()
    else:
        log.info("GRADIO_TEMP_DIR is %s: stale uploads there are not cleared at start", folder)
    return inbox


def serve(settings: Settings) -> None:
    import uvicorn

    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")


if __name__ == "__main__":
    serve(Settings())
