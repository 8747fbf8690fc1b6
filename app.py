"""Composition root: settings → index → bot → FastAPI app (REST/SSE API, embed) with the Gradio page mounted.

``python app.py`` serves on the configured host and port (default http://127.0.0.1:7860).
"""

from __future__ import annotations

import os

from fastapi import FastAPI

from bot.config import Settings


def create_app(settings: Settings) -> FastAPI:
    """Build the whole web app; the heavy parts (embedding model, store) load here, not at import."""
    import gradio as gr

    from bot.api import install_api
    from bot.chat import Bot
    from bot.edge import AnswerSlots, install_edge
    from bot.ui import build_ui, page_assets, ui_auth

    bot = Bot.from_settings(settings)
    slots = AnswerSlots(settings.max_concurrent_answers)
    # Gradio keeps uploaded files in its cache until the page indexes them: in the data directory, unless the
    # operator chose a place, rather than the system's temporary folder.
    os.environ.setdefault("GRADIO_TEMP_DIR", str((settings.data_dir / "gradio").resolve()))
    app = FastAPI(
        title="docbot", version="0.1.0", description="Answers questions about your documents, with cited passages."
    )
    install_api(app, bot, settings, slots)
    blocks = build_ui(bot, settings, slots)
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
        **page_assets(),
    )
    install_edge(app, settings)  # last, so that it runs first: before the API, the embed and the page
    return app


def serve(settings: Settings) -> None:
    import uvicorn

    # Forwarded headers are bot.edge's to judge (DOCBOT_TRUSTED_PROXIES): uvicorn's own handling would believe them
    # from 127.0.0.1, so any local caller, or a proxy on the same machine passing a client's header through.
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info", proxy_headers=False)


if __name__ == "__main__":
    serve(Settings())
