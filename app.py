"""Composition root: ``build(settings) -> Services`` wires the parts once; ``create_app(services)`` is the web app.

Every entry point goes through :func:`build`: the CLI (each command), ``docbot serve``, the evaluator and the
benchmarks. ``python app.py`` is ``docbot serve``: it serves on the configured host and port (default http://127.0.0.1:7860).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from bot.config import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from bot.answer.chat import Bot
    from index.embeddings import Embedder
    from index.pipeline import Indexer
    from index.retriever import HybridRetriever
    from index.store import VectorStore


@dataclass(frozen=True)
class Services:
    """One docbot's parts, built by :func:`build`.

    ``retriever`` and ``bot`` open on first use: an index run needs neither the BM25 load nor the model backend
    they bring, and a retriever opened after the run sees what it wrote.
    """

    settings: Settings
    embedder: Embedder
    store: VectorStore
    indexer: Indexer

    @cached_property
    def retriever(self) -> HybridRetriever:
        from index.retriever import HybridRetriever

        return HybridRetriever(settings=self.settings, embedder=self.embedder, store=self.store)

    @cached_property
    def bot(self) -> Bot:
        from bot.answer.chat import Bot
        from bot.answer.llm import build_backend

        return Bot(self.settings, self.retriever, build_backend(self.settings))


def build(settings: Settings, *, embedder: Embedder | None = None, rebuild: bool = False) -> Services:
    """Load the embedding model (unless one is given), open the store (checking the model matches).

    ``rebuild`` drops the store's collection first (``docbot index --rebuild``).
    """
    from index.embeddings import Embedder
    from index.pipeline import Indexer
    from index.store import VectorStore

    embedder = embedder or Embedder.from_settings(settings)
    store = VectorStore(settings, embedder.name, embedder.dimension, rebuild=rebuild)
    return Services(settings, embedder, store, Indexer(settings, embedder, store))


def create_app(services: Services) -> FastAPI:
    """The whole web app over ``services``: REST/SSE API, OpenAI-compatible API, embed, Gradio page."""
    import gradio as gr
    from fastapi import FastAPI

    from bot.web.api import install_api
    from bot.web.page import build_ui, page_assets, ui_auth

    settings = services.settings
    # Gradio keeps uploaded files in its cache until the page indexes them: in the data directory, unless the
    # operator chose a place, rather than the system's temporary folder.
    os.environ.setdefault("GRADIO_TEMP_DIR", str((settings.data_dir / "gradio").resolve()))
    app = FastAPI(
        title="docbot", version="0.1.0", description="Answers questions about your documents, with cited passages."
    )
    install_api(app, services.bot, settings)
    blocks = build_ui(services.bot, settings, services.indexer)
    return gr.mount_gradio_app(
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


def serve(settings: Settings) -> None:
    import uvicorn

    uvicorn.run(create_app(build(settings)), host=settings.host, port=settings.port, log_level="info")


if __name__ == "__main__":  # the same as `docbot serve`, bad settings and an unreachable store included
    from bot.cli import app as cli

    cli(["serve"])
