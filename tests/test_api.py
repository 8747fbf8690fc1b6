"""The HTTP API: httpx for REST/SSE, the official openai client, against the whole app in-process.

One app for the whole module (API keys on, one embed origin, small limits so they are cheap to cross), built as
``docbot serve`` builds it (``create_app(build(settings))``) over the indexed seeds, with the hashing embedder: the
subject here is the API, not the model. What needs the real process (its access log) runs against ``docbot serve``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from fastapi.testclient import TestClient
from live import LiveServer, live_server

KEY = "test-main-key-3f7a9c"
OTHER_KEY = "test-other-key-91c2e4"
LIMITED_KEY = "test-limited-key-55d0b8"
ASKING_KEY = "test-asking-key-7e21c0"
WRONG_KEY = "test-wrong-key-0aa1f3"
WIKI = "http://wiki.example.test:8090"
LIMIT = 30
MAX_BODY = 4096
MAX_QUESTION = 300
QUESTION = "What did coalition forces resume because of the growing ISIS force?"
SEEDS = Path(__file__).resolve().parent.parent / "seeds"


ENV = {
    "DOCBOT_API_KEYS": f"{KEY},{OTHER_KEY},{LIMITED_KEY},{ASKING_KEY}",
    "DOCBOT_EMBED_ORIGINS": WIKI,
    "DOCBOT_RATE_LIMIT_PER_MINUTE": str(LIMIT),
    "DOCBOT_MAX_BODY_BYTES": str(MAX_BODY),
    "DOCBOT_MAX_QUESTION_CHARS": str(MAX_QUESTION),
    # these tests send a dozen wrong keys from 127.0.0.1 on purpose; the lockout has tests of its own
    "DOCBOT_AUTH_FAILURE_LIMIT": "1000",
}


@pytest.fixture(scope="module")
def app_settings() -> dict[str, Any]:
    """The module's docbot (conftest's ``services`` over the seeds): keys, one embed origin, small limits."""
    return {
        "api_keys": ENV["DOCBOT_API_KEYS"],
        "embed_origins": WIKI,
        "rate_limit_per_minute": LIMIT,
        "max_body_bytes": MAX_BODY,
        "max_question_chars": MAX_QUESTION,
        "auth_failure_limit": 1000,
    }


@pytest.fixture(scope="module")
def web(client: TestClient) -> TestClient:
    """The app with no key sent: a caller from the outside."""
    return client


@pytest.fixture(scope="module")
def api(web: TestClient) -> httpx.Client:
    """The same app, every request with the main key."""
    client = TestClient(web.app, base_url=str(web.base_url), headers={"Authorization": f"Bearer {KEY}"})
    client.timeout = 120
    return client


@pytest.fixture(scope="module")
def ai(web: TestClient) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{web.base_url}/v1", api_key=KEY, max_retries=0, timeout=120, http_client=web)


def sse_events(lines: Iterator[str]) -> list[tuple[str, str]]:
    """(event name, data) of each server-sent event."""
    events: list[tuple[str, str]] = []
    name, data = "message", []
    for line in lines:
        if not line:
            if data:
                events.append((name, "\n".join(data)))
            name, data = "message", []
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip(" "))
    return events


def test_ask_answers_with_citations(api: httpx.Client) -> None:
    response = api.post("/api/ask", json={"question": QUESTION})
    assert response.status_code == 200, response.text
    body = response.json()
    assert "air strikes" in body["answer"] and "[1]" in body["answer"]
    assert body["refused"] is False
    assert set(body["timings"]) == {"retrieval_ms", "generation_ms", "total_ms"}
    first = body["citations"][0]
    assert first["number"] == 1 and first["source"] == "isis-resurgence-iraq.txt"
    assert "air strikes" in first["quote"] and first["quote"] in first["passage"]
    document = (SEEDS / first["source"]).read_text()
    assert document[first["quote_start"] : first["quote_end"]] == first["quote"]


def test_ask_takes_history_and_k(api: httpx.Client) -> None:
    first = api.post("/api/ask", json={"question": QUESTION}).json()
    follow_up = "Which warplanes carried out attacks against them last month?"
    response = api.post("/api/ask", json={"question": follow_up, "history": [[QUESTION, first["answer"]]], "k": 2})
    assert response.status_code == 200, response.text
    body = response.json()
    assert "American and British warplanes" in " ".join(c["passage"] for c in body["citations"])
    assert len(body["citations"]) <= 2


def test_a_conversation_is_stored_and_continued_by_its_id(api: httpx.Client, web: TestClient) -> None:
    first = api.post("/api/ask", json={"question": QUESTION, "keep": True}).json()
    conversation = first["conversation_id"]
    assert conversation
    follow_up = "Which warplanes carried out attacks against them last month?"
    body = {"question": follow_up, "conversation_id": conversation, "k": 2}
    response = api.post("/api/ask", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["conversation_id"] == conversation
    assert "American and British warplanes" in " ".join(c["passage"] for c in response.json()["citations"])
    assert response.json()["query"] != follow_up  # rewritten from the stored history

    other = {"Authorization": f"Bearer {OTHER_KEY}"}
    for path in ("/api/ask", "/api/ask/stream"):
        refused = web.post(path, json={"question": "And then?", "conversation_id": conversation}, headers=other)
        assert refused.status_code == 404 and "start a new one" in refused.json()["detail"]  # not theirs
    unknown = api.post("/api/ask", json={"question": "And then?", "conversation_id": "made-up-id"})
    assert unknown.status_code == 404
    both = api.post("/api/ask", json={**body, "history": [[QUESTION, first["answer"]]]})
    assert both.status_code == 422 and "not both" in both.json()["detail"]
    too_long = api.post("/api/ask", json={"question": "And then?", "conversation_id": "x" * 65})
    assert too_long.status_code == 422

    with api.stream("POST", "/api/ask/stream", json={"question": "And when?", "conversation_id": conversation}) as s:
        streamed = json.loads(sse_events(s.iter_lines())[-1][1])
    assert streamed["conversation_id"] == conversation
    fresh = api.post("/api/ask", json={"question": QUESTION, "keep": True}).json()["conversation_id"]
    assert fresh not in (None, conversation)  # kept without an id: a new conversation
    kept_with_history = api.post("/api/ask", json={"question": "And then?", "keep": True, "history": [["Q", "A"]]})
    assert kept_with_history.status_code == 422 and "not both" in kept_with_history.json()["detail"]


def test_an_answer_is_stored_only_when_continued_or_kept(api: httpx.Client) -> None:
    """Issue 27, finding 10: every anonymous /api/ask stored a conversation nobody could list, forever."""
    assert api.post("/api/ask", json={"question": QUESTION}).json()["conversation_id"] is None
    with api.stream("POST", "/api/ask/stream", json={"question": QUESTION}) as stream:
        assert json.loads(sse_events(stream.iter_lines())[-1][1])["conversation_id"] is None


def test_an_ask_counts_once_against_the_rate_limit(web: TestClient) -> None:
    asking = {"Authorization": f"Bearer {ASKING_KEY}"}
    half = LIMIT // 2
    asks = [web.post("/api/ask", json={"question": QUESTION}, headers=asking).status_code for _ in range(half)]
    lists = [web.get("/api/documents", headers=asking).status_code for _ in range(LIMIT - half)]
    assert asks + lists == [200] * LIMIT
    assert web.get("/api/documents", headers=asking).status_code == 429


def test_stream_sends_pieces_then_the_structured_answer(api: httpx.Client) -> None:
    with api.stream("POST", "/api/ask/stream", json={"question": QUESTION}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response.iter_lines())
    names = [name for name, _ in events]
    assert names[-1] == "answer" and set(names[:-1]) == {"text"}
    answer = json.loads(events[-1][1])
    streamed = "".join(json.loads(data)["text"] for name, data in events if name == "text")
    assert streamed == answer["answer"]
    assert "air strikes" in answer["answer"] and answer["citations"]


def test_documents_and_health(web: TestClient, api: httpx.Client) -> None:
    documents = api.get("/api/documents").json()["documents"]
    assert [d["source"] for d in documents] == ["isis-resurgence-iraq.txt"]
    assert documents[0]["chunks"] > 1 and documents[0]["pages"] is None and documents[0]["uploaded"] is False
    assert "root" not in documents[0] and str(SEEDS) not in json.dumps(documents)  # no server path leaves
    health = web.get("/api/health")  # no key: a liveness probe needs none
    assert health.status_code == 200 and health.json()["chunks"] == documents[0]["chunks"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/ask", {"question": QUESTION}),
        ("POST", "/api/ask/stream", {"question": QUESTION}),
        ("GET", "/api/documents", None),
        ("GET", "/v1/models", None),
        ("POST", "/v1/chat/completions", {"model": "docbot", "messages": [{"role": "user", "content": QUESTION}]}),
    ],
)
def test_without_a_valid_key_401(web: TestClient, method: str, path: str, body: object) -> None:
    missing = web.request(method, path, json=body)
    wrong = web.request(method, path, json=body, headers={"Authorization": f"Bearer {WRONG_KEY}"})
    for response in (missing, wrong):
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert WRONG_KEY not in response.text


def test_empty_or_too_long_question_422(api: httpx.Client) -> None:
    for path in ("/api/ask", "/api/ask/stream"):
        empty = api.post(path, json={"question": "   "})
        assert empty.status_code == 422 and empty.json() == {"detail": "the question is empty"}
        long = api.post(path, json={"question": "why " * 80})
        assert long.status_code == 422
        assert long.json()["detail"] == f"the question is 320 characters long; the limit is {MAX_QUESTION}"
    chat = api.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "x" * 301}]})
    assert chat.status_code == 422 and "the limit is 300" in chat.json()["error"]["message"]
    assert api.post("/api/ask", json={"history": []}).status_code == 422


def test_body_over_the_limit_413(api: httpx.Client) -> None:
    big = json.dumps({"question": QUESTION, "history": [["q", "a" * MAX_BODY]]}).encode()
    as_json = {"Content-Type": "application/json"}
    assert api.post("/api/ask", content=big, headers=as_json).status_code == 413

    def chunked() -> Iterator[bytes]:  # no Content-Length: the limit must count the bytes as they come
        yield from (big[i : i + 1000] for i in range(0, len(big), 1000))

    response = api.post("/api/ask", content=chunked(), headers=as_json)
    assert response.status_code == 413
    assert api.post("/v1/chat/completions", content=big, headers=as_json).status_code == 413


def test_rate_limit_per_key_429_with_retry_after(web: TestClient) -> None:
    limited = {"Authorization": f"Bearer {LIMITED_KEY}"}
    statuses = [web.get("/v1/models", headers=limited).status_code for _ in range(LIMIT)]
    assert statuses == [200] * LIMIT
    over = web.get("/api/documents", headers=limited)
    assert over.status_code == 429
    assert 1 <= int(over.headers["retry-after"]) <= 60
    assert "retry in" in over.json()["detail"]
    other = web.get("/v1/models", headers={"Authorization": f"Bearer {OTHER_KEY}"})
    assert other.status_code == 200  # the limit is per key


def test_cors_only_for_the_listed_origin(web: TestClient) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    allowed = web.options("/api/ask", headers={"Origin": WIKI, **preflight})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == WIKI
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    refused = web.options("/api/ask", headers={"Origin": "http://evil.example.test", **preflight})
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    simple = web.get("/api/health", headers={"Origin": "http://evil.example.test"})
    assert "access-control-allow-origin" not in simple.headers


def test_pages_may_be_framed_only_by_the_listed_origin(web: TestClient) -> None:
    embed = web.get("/embed")
    assert embed.status_code == 200 and 'id="question"' in embed.text
    policy = embed.headers["content-security-policy"]
    assert f"frame-ancestors 'self' {WIKI}" in policy and "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    chat_page = web.get("/")
    assert chat_page.status_code == 200
    assert chat_page.headers["content-security-policy"] == f"frame-ancestors 'self' {WIKI}"
    widget = web.get("/widget.js")
    assert widget.headers["content-type"].startswith("text/javascript") and "attachShadow" in widget.text


def test_openapi_describes_everything(api: httpx.Client) -> None:
    spec = api.get("/openapi.json").json()
    assert {
        "/api/ask",
        "/api/ask/stream",
        "/api/health",
        "/api/documents",
        "/v1/chat/completions",
        "/v1/models",
        "/embed",
        "/widget.js",
    } <= set(spec["paths"])
    assert spec["components"]["securitySchemes"]["APIKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": spec["components"]["securitySchemes"]["APIKey"]["description"],
    }
    assert "text/event-stream" in spec["paths"]["/api/ask/stream"]["post"]["responses"]["200"]["content"]
    assert "Citation" in spec["components"]["schemas"]


def test_openai_client_completion(ai: openai.OpenAI) -> None:
    completion = ai.chat.completions.create(
        model="docbot",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": QUESTION}],
    )
    content = completion.choices[0].message.content or ""
    answer, sources = content.split("\n\nSources:\n")
    assert "air strikes" in answer and "[1]" in answer
    assert sources.startswith("[1] ") and "isis-resurgence-iraq.txt" in sources
    citations = (completion.model_extra or {})["citations"]
    assert citations[0]["number"] == 1 and citations[0]["quote"] in sources


def test_openai_client_stream(ai: openai.OpenAI) -> None:
    stream = ai.chat.completions.create(model="docbot", messages=[{"role": "user", "content": QUESTION}], stream=True)
    chunks = list(stream)
    content = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert "air strikes" in content and "\n\nSources:\n[1] " in content
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert (chunks[-1].model_extra or {})["citations"][0]["number"] == 1
    whole = ai.chat.completions.create(model="docbot", messages=[{"role": "user", "content": QUESTION}])
    assert content == whole.choices[0].message.content


def test_openai_client_models_and_errors(web: TestClient, ai: openai.OpenAI) -> None:
    assert [m.id for m in ai.models.list()] == ["docbot"]
    stranger = openai.OpenAI(base_url=f"{web.base_url}/v1", api_key=WRONG_KEY, max_retries=0, http_client=web)
    with pytest.raises(openai.AuthenticationError):
        stranger.models.list()
    with pytest.raises(openai.UnprocessableEntityError, match="last message must be the user's question"):
        ai.chat.completions.create(model="docbot", messages=[{"role": "assistant", "content": "hello"}])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The real ``docbot serve`` on 127.0.0.1 with the same settings, for what only the process has: its log."""
    with live_server(tmp_path_factory.mktemp("api-live"), env=ENV) as live:
        yield live


@pytest.mark.server
def test_keys_never_reach_the_log(server: LiveServer) -> None:
    httpx.get(f"{server.url}/v1/models", headers={"Authorization": f"Bearer {KEY}"})
    httpx.get(f"{server.url}/v1/models", headers={"Authorization": f"Bearer {WRONG_KEY}"})
    log = server.log.read_text(errors="replace")
    assert "GET /v1/models" in log  # the access log is there...
    for key in (KEY, OTHER_KEY, LIMITED_KEY, WRONG_KEY):
        assert key not in log  # ...without any key
