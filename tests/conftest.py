"""Shared fixtures: real settings in a temporary data directory, the hashing embedder and the real model.

Tiers: a test that asks for ``embedder`` (the real bundled model) is marked ``model``, one that asks for
``chromium`` is marked ``browser``; the default ``pytest`` run deselects those (see ``addopts`` in
pyproject.toml), ``make test`` runs every tier.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from bot.config import Settings
from index.embeddings import Embedder
from index.hashing import HashingEmbedder

if TYPE_CHECKING:
    from app import Services
    from bot.state.database import Database

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
SEED_DOC = SEEDS / "isis-resurgence-iraq.txt"
EVAL_SET = ROOT / "tests" / "data" / "seed_dev.jsonl"


#: Settings for a bot that answers over the hashing embedder: it has no meaning, so the "not covered" evidence rule
#: (its similarity counts) cannot tell on-topic from off-topic with it; a fixed similarity line
#: does (the seed questions of the tests score 0.34 and more, off-topic ones 0.25 and less).
HASHING_COVERAGE: dict[str, Any] = {"coverage": "floor", "relevance_floor": 0.3}


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No DOCBOT_* variable or docbot.toml from the developer's shell leaks into a test."""
    import os

    for name in list(os.environ):
        if name.startswith("DOCBOT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


#: Fixture → the marker of the heavy part it brings: a test that uses the fixture is in that part's tier.
TIER_OF_FIXTURE = {"embedder": "model", "chromium": "browser", "postgres": "server", "state_db_url": "server"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for fixture in getattr(item, "fixturenames", ()):
            if fixture in TIER_OF_FIXTURE:
                item.add_marker(TIER_OF_FIXTURE[fixture])


@pytest.fixture(scope="session", autouse=True)
def _one_set_of_pools() -> Iterator[None]:
    """A docbot process builds its worker pools once (``app.build``); the test process builds many docbots, which
    share one set here, so that a parsing or viewer worker is not started again for each."""
    import app

    shared = app.Pools()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(app, "open_pools", lambda: shared)
        yield
    shared.close()


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The real bundled all-MiniLM-L6-v2 (full tier): for tests about the model or what it finds."""
    return Embedder.from_settings(Settings())


@pytest.fixture(scope="session")
def hashing_embedder() -> HashingEmbedder:
    """The deterministic hashing embedder (fast tier): for tests whose subject is not the model."""
    return HashingEmbedder()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture(scope="module")
def app_settings() -> dict[str, Any]:
    """What the module's ``services`` differ by from the default settings: a module overrides this fixture."""
    return {}


@pytest.fixture(scope="module")
def services(
    tmp_path_factory: pytest.TempPathFactory, hashing_embedder: HashingEmbedder, app_settings: dict[str, Any]
) -> Services:
    """One docbot for the module, as ``docbot serve`` builds it (``app.build``), over the indexed seed documents
    with the hashing embedder (fast tier), in a clean temporary data directory."""
    from answer_fixtures import clean_settings
    from helpers import indexed

    from app import build

    settings = clean_settings(tmp_path_factory.mktemp("services") / "data", **HASHING_COVERAGE | app_settings)
    return indexed(build(settings, embedder=hashing_embedder), SEEDS)


@pytest.fixture(scope="module")
def client(services: Services) -> Iterator[Any]:
    """The whole app over ``services`` in-process (FastAPI's TestClient, started), no credentials sent."""
    from helpers import app_client

    with app_client(services) as test_client:
        yield test_client


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


@pytest.fixture
def state_db(tmp_path: Path) -> Iterator[Any]:
    """The state database as a replica opens it by default: SQLite in a data directory (fast tier)."""
    from bot.state.database import Database

    database = Database.open(None, tmp_path / "state")
    yield database
    database.close()


@pytest.fixture(scope="session")
def postgres() -> Iterator[Any]:
    """One throw-away PostgreSQL cluster on loopback for the session (server tier); see ``state_db_url``."""
    from live import postgres_server

    with postgres_server() as server:
        yield server


@pytest.fixture
def state_db_url(postgres: Any) -> str:
    """A fresh, empty PostgreSQL database for one test: the URL for ``Database.open`` / DOCBOT_DATABASE_URL."""
    import uuid

    from sqlalchemy import create_engine, text

    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return postgres.url.rsplit("/", 1)[0] + f"/{name}"


Replicas = tuple["Database", "Database"]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.server)])
def replicas(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Replicas]:
    """Two replicas' state databases over one database: SQLite (fast tier), PostgreSQL (server tier)."""
    from bot.state.database import Database

    url = request.getfixturevalue("state_db_url") if request.param == "postgresql" else None
    one, two = Database.open(url, tmp_path / "state"), Database.open(url, tmp_path / "state")
    assert one.backend == two.backend == request.param
    yield one, two
    one.close()
    two.close()
