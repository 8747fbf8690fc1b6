"""The API's guards and helpers on small in-process apps: no model, no server, fast."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi import Depends, FastAPI, HTTPException, Response
from fastapi.testclient import TestClient
from helpers import Clock, access_over
from pydantic import SecretStr, ValidationError

from bot.access.policy import Identity
from bot.access.rate_limits import RateLimiter
from bot.answer.errors import QuestionError
from bot.config import Settings
from bot.state.counters import WindowCounters
from bot.state.database import Database
from bot.web.api import answer_events
from bot.web.errors import install_error_handlers
from bot.web.models import ChatMessage
from bot.web.openai_compat import SOURCES_HEADING, completion_chunks, conversation
from bot.web.security import FrameAncestors, Guard, frame_ancestors
from bot.web.streams import Piece, store_down_fix
from index.errors import StoreUnavailableError


def test_rate_limiter_is_a_sliding_window_per_caller_shared_by_replicas(state_db: Database, tmp_path: Path) -> None:
    clock = Clock()
    clock.now = 1200.0  # a window of 60 s starts here
    other_replica = Database.open(None, tmp_path / "state")
    limiter = RateLimiter(WindowCounters(state_db, "api", 60, clock=clock), 3)
    twin = RateLimiter(WindowCounters(other_replica, "api", 60, clock=clock), 3)
    allowed = []
    for replica in (limiter, twin, limiter):  # at 0, 10, 20 s, alternating replicas
        allowed.append(replica.retry_after("a"))
        clock.now += 10
    assert allowed == [0, 0, 0]
    assert twin.retry_after("a") == 45  # at 30 s, over the limit on either replica (4 counted: 30 s + 3/4 minute)
    assert limiter.retry_after("b") == 0  # another caller has a window of its own
    page = RateLimiter(WindowCounters(state_db, "page", 60, clock=clock), 3)
    assert page.retry_after("a") == 0  # and so has another purpose
    clock.now = 1260.0
    assert limiter.retry_after("a") > 0  # a new fixed window, but the last minute's requests still count
    clock.now = 1380.0
    assert limiter.retry_after("a") == 0  # two minutes on, they have faded
    other_replica.close()


def _app(keys: list[str], limit: int = 100, **settings: object) -> TestClient:
    app = FastAPI()
    database = Database.open(None, Path("state"))  # in the test's own working directory
    access = access_over(Settings(api_keys=[SecretStr(k) for k in keys], **settings), database)  # type: ignore[arg-type]
    guard = Guard(access, RateLimiter(WindowCounters(database, "api", 60), limit))

    @app.get("/api/ok")
    def ok(identity: Identity = Depends(guard)) -> dict[str, str]:  # noqa: B008 (guard is local)
        return {"name": identity.name, "role": identity.role.name}

    install_error_handlers(app, "http://127.0.0.1:1", "start it")
    return TestClient(app)


def test_guard_names_the_caller_by_the_key_s_name_never_by_the_key() -> None:
    client = _app(["first-secret", "ops:second-secret:editor"])
    assert client.get("/api/ok", headers={"Authorization": "Bearer first-secret"}).json() == {
        "name": "key1",
        "role": "reader",
    }
    assert client.get("/api/ok", headers={"Authorization": "Bearer second-secret"}).json() == {
        "name": "ops",
        "role": "editor",
    }


def test_guard_refuses_a_missing_or_wrong_key_with_401() -> None:
    client = _app(["first-secret", "second-secret"])
    assert client.get("/api/ok", headers={"Authorization": "Bearer first-secret"}).status_code == 200
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic c2Vjb25kLXNlY3JldA=="}):
        response = client.get("/api/ok", headers=headers)
        assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
        assert "secret" not in response.text


def test_without_keys_callers_are_still_rate_limited() -> None:
    client = _app([], limit=2)
    assert [client.get("/api/ok").status_code for _ in range(2)] == [200, 200]
    over = client.get("/api/ok")
    assert over.status_code == 429 and 1 <= int(over.headers["retry-after"]) <= 60


def test_a_store_that_is_down_is_a_503_naming_it_and_the_fix() -> None:
    app = FastAPI()
    fix = "start the Chroma server at http://127.0.0.1:8000 (chroma run)"
    install_error_handlers(app, "http://127.0.0.1:8000", fix)

    @app.get("/api/down")
    @app.get("/v1/down")
    def down() -> None:
        raise StoreUnavailableError("cannot reach the Chroma server at http://127.0.0.1:8000: connection refused")

    client = TestClient(app)
    rest = client.get("/api/down")
    assert rest.status_code == 503 and rest.json()["store"] == "http://127.0.0.1:8000"
    assert "cannot reach the Chroma server" in rest.json()["detail"] and rest.json()["fix"] == fix
    openai_style = client.get("/v1/down")
    assert openai_style.status_code == 503 and openai_style.json()["error"]["code"] == 503
    assert openai_style.json()["error"]["message"].endswith(f"; to fix: {fix}")


def test_origins_must_be_bare_origins(tmp_path: Path) -> None:
    given = Settings(data_dir=tmp_path, embed_origins="https://wiki.example.com/, http://127.0.0.1:8090")
    assert given.embed_origins == ["https://wiki.example.com", "http://127.0.0.1:8090"]
    for bad in ("*", "wiki.example.com", "https://wiki.example.com/page", "https://a.example; script-src *"):
        with pytest.raises(ValidationError, match=r"origins like https://wiki\.example\.com"):
            Settings(data_dir=tmp_path, embed_origins=bad)
    assert frame_ancestors([]) == "frame-ancestors 'self'"


def test_domain_errors_have_their_status_and_other_errors_are_500s_without_detail() -> None:
    """A question the bot cannot take is the caller's 422; a ValueError from a library (Chroma's, say) is not."""
    app = FastAPI()
    install_error_handlers(app, "http://127.0.0.1:8000", "start it")

    @app.get("/api/question")
    @app.get("/v1/question")
    def question() -> None:
        raise QuestionError("the question is empty")

    @app.get("/api/library")
    @app.get("/v1/library")
    def library() -> None:
        raise ValueError("Expected where to have exactly one operator, got {}")

    client = TestClient(app, raise_server_exceptions=False)
    assert client.get("/api/question").status_code == 422
    assert client.get("/api/question").json() == {"detail": "the question is empty"}
    openai_style = client.get("/v1/question").json()["error"]
    assert openai_style["code"] == 422 and openai_style["message"] == "the question is empty"
    for path in ("/api/library", "/v1/library"):
        response = client.get(path)
        assert response.status_code == 500 and "operator" not in response.text


def test_frame_ancestors_is_added_unless_the_response_has_its_own_policy() -> None:
    app = FastAPI()

    @app.get("/plain")
    def plain() -> dict[str, str]:
        return {}

    @app.get("/own")
    def own() -> Response:
        return Response(headers={"Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'"})

    app.add_middleware(FrameAncestors, policy="frame-ancestors 'self'")
    client = TestClient(app)
    assert client.get("/plain").headers.get_list("content-security-policy") == ["frame-ancestors 'self'"]
    assert client.get("/own").headers.get_list("content-security-policy") == [
        "default-src 'none'; frame-ancestors 'none'"
    ]


def test_conversation_pairs_turns_and_drops_the_sources_block() -> None:
    messages = [
        ChatMessage(role="system", content="Be brief."),
        ChatMessage(role="user", content="Who?"),
        ChatMessage(role="assistant", content=f'Coflin. [1]{SOURCES_HEADING}[1] a (a.txt): "Coflin"'),
        ChatMessage(role="user", content=[{"type": "text", "text": "And when?"}]),
    ]
    assert conversation(messages) == ("And when?", [("Who?", "Coflin. [1]")])
    with pytest.raises(HTTPException) as refused:
        conversation(messages[:3])
    assert refused.value.status_code == 422 and refused.value.detail == "the last message must be the user's question"


async def _pieces_then_store_down() -> AsyncIterator[Piece]:
    yield "The first sentence. [1]"
    raise StoreUnavailableError("the vector store at http://127.0.0.1:8000 failed to search: connection refused")


def _collect(events: AsyncIterator[dict[str, str]]) -> list[dict[str, str]]:
    async def run() -> list[dict[str, str]]:
        return [event async for event in events]

    return asyncio.run(run())


async def _never_kept(answer: object) -> str:
    raise AssertionError("a stream that failed has no answer to keep")


def test_a_store_failing_mid_stream_ends_the_stream_with_an_error_event() -> None:
    fix = store_down_fix(Settings(chroma_url="http://127.0.0.1:8000"))
    events = _collect(answer_events(_pieces_then_store_down(), "http://127.0.0.1:8000", fix, _never_kept))
    assert [e["event"] for e in events] == ["text", "error"]
    assert json.loads(events[1]["data"]) == {
        "detail": "the vector store at http://127.0.0.1:8000 failed to search: connection refused",
        "status": 503,
        "store": "http://127.0.0.1:8000",
        "fix": fix,
    }
    assert "chroma run" in fix
    chunks = [e["data"] for e in _collect(completion_chunks(_pieces_then_store_down(), fix))]
    assert chunks[-1] == "[DONE]"
    error = json.loads(chunks[-2])["error"]
    assert error["code"] == 503 and error["message"].endswith(f"; to fix: {fix}")
