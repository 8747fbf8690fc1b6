"""Shared fixtures: real settings in a temporary data directory, the real bundled embedding model."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.config import Settings
from index.embeddings import Embedder

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
SEED_DOC = SEEDS / "isis-resurgence-iraq.txt"
EVAL_SET = ROOT / "tests" / "data" / "seed_dev.jsonl"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No DOCBOT_* variable or docbot.toml from the developer's shell leaks into a test."""
    import os

    for name in list(os.environ):
        if name.startswith("DOCBOT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return Embedder.from_settings(Settings())


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def corpus(tmp_path: Path) -> Iterator[Path]:
    """A private copy of the seed documents that a test may change."""
    folder = tmp_path / "docs"
    shutil.copytree(SEEDS, folder)
    yield folder


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright: one per test module."""
    from live import browser

    with browser() as instance:
        yield instance
