"""REST routes (placeholder until the API issue lands: health only)."""

from __future__ import annotations

from fastapi import FastAPI

from bot.chat import Bot
from bot.config import Settings


def install_api(app: FastAPI, bot: Bot, settings: Settings) -> None:
    @app.get("/api/health")
    def health() -> dict[str, object]:
        return {"status": "ok", "chunks": bot.retriever.store.count(), "generator": bot.generator_name}
