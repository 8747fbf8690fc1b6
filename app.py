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

    from bot.access import Access
    from bot.access_gate import connect_page_login, install_gate
    from bot.api import install_api
    from bot.chat import Bot
    from bot.signin import install_signin
    from bot.ui import build_ui, page_assets

    access = Access.from_settings(settings)  # a settings problem stops here, before the model loads
    bot = Bot.from_settings(settings)
    # Gradio keeps uploaded files in its cache until the page indexes them: in the data directory, unless the
    # operator chose a place, rather than the system's temporary folder.
    os.environ.setdefault("GRADIO_TEMP_DIR", str((settings.data_dir / "gradio").resolve()))
    app = FastAPI(
        title="docbot", version="0.1.0", description="Answers questions about your documents, with cited passages."
    )
    install_api(app, bot, settings, access)
    install_gate(app, access)
    if access.login_configured and access.anonymous is not None:  # the page is open, so Gradio shows no login form
        install_signin(app)
    blocks = build_ui(bot, settings, access)
    gr.mount_gradio_app(
        app,
        blocks,
        path="/",
        auth=access.password_check if access.login_configured else None,
        max_file_size=settings.max_upload_bytes,
        server_name=settings.host,
        server_port=settings.port,
        footer_links=[],
        ssr_mode=False,
        **page_assets(),
    )
    connect_page_login(app, access)
    return app


def serve(settings: Settings) -> None:
    import uvicorn

    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")


if __name__ == "__main__":
    serve(Settings())
