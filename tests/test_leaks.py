"""Nothing crosses a collection boundary: two collections with different readers, every door of the API tried
in-process (the whole app as ``docbot serve`` builds it, hashing embedder, real Chroma, grants in the real state
database). Each reader gets cited answers from their own collection only; a question only the other collection
answers is refused; no response (answer, citations, sources, errors, document listings, collection and model lists)
carries a word, source or title of the collection the caller may not read, and that collection's store is never
touched by their requests (counted on the store itself, not timed)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from answer_fixtures import clean_settings
from conftest import HASHING_COVERAGE
from fastapi.testclient import TestClient
from leak_corpus import FINANCE_DOCS, FINANCE_MARKS, FINANCE_QUESTION, HR_DOCS, HR_MARKS, HR_QUESTION, write

from app import build, build_library, create_app
from bot.state.grants import GrantStore, Right
from index.protocols import Embedder
from index.retriever import HybridRetriever
from index.store import VectorStore

USERS = "ann:ann-admin-pw:admin,hanna:hanna-pw:reader,finn:finn-pw:reader"
HANNA, FINN, ANN = ("hanna", "hanna-pw"), ("finn", "finn-pw"), ("ann", "ann-admin-pw")


class Touches:
    """Which Chroma collections were read, and how often: a spy on the real store and retriever (they still run)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.counts: Counter[str] = Counter()
        for method in ("query", "get", "iter_all", "by_source", "count"):
            self._spy(monkeypatch, VectorStore, method, lambda store: store._settings.collection)
        self._spy(monkeypatch, HybridRetriever, "search", lambda retriever: retriever.settings.collection)

    def _spy(self, monkeypatch: pytest.MonkeyPatch, cls: type, method: str, name_of: Callable[[Any], str]) -> None:
        real = getattr(cls, method)
        counts = self.counts

        def spied(self: Any, *args: Any, **kwargs: Any) -> Any:
            counts[name_of(self)] += 1
            return real(self, *args, **kwargs)

        monkeypatch.setattr(cls, method, spied)

    def of(self, suffix: str) -> int:
        return sum(n for name, n in self.counts.items() if name.endswith(f".{suffix}"))


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, hashing_embedder: Embedder) -> Iterator[TestClient]:
    root = tmp_path_factory.mktemp("leaks")
    settings = clean_settings(root / "data", users=USERS, auth_failure_limit=1000, **HASHING_COVERAGE)
    library = build_library(settings, embedder=hashing_embedder)
    for name, files in (("hr", HR_DOCS), ("finance", FINANCE_DOCS)):
        report = library.services(name, create=True).indexer.run([write(root / name, files)])
        assert not report.failed and report.added, report.summary()
    services = build(settings, embedder=hashing_embedder)
    grants = GrantStore(services.database, cache_s=0)
    grants.grant("hr", "user:hanna", Right.read)
    grants.grant("finance", "user:finn", Right.read)
    app = create_app(services)
    app.state.hr_key = grants.create_key("embed-hr", "hr")
    with TestClient(app, base_url="http://127.0.0.1:7860") as client:
        client.timeout = httpx.Timeout(120)
        yield client


def ask(client: TestClient, auth: Any, question: str, collection: Any = None, **more: Any) -> httpx.Response:
    body = {"question": question, **({"collection": collection} if collection is not None else {}), **more}
    return client.post("/api/ask", json=body, **auth)


def basic(user: tuple[str, str]) -> dict[str, Any]:
    return {"auth": user}


def key(client: TestClient) -> dict[str, Any]:
    return {"headers": {"Authorization": f"Bearer {client.app.state.hr_key}"}}  # type: ignore[attr-defined]


def answer_event(stream: httpx.Response) -> dict[str, Any]:
    """The ``answer`` event of an /api/ask/stream response."""
    lines = stream.text.splitlines()
    at = lines.index("event: answer")
    return dict(json.loads(lines[at + 1].removeprefix("data:").strip()))


def clean_of(marks: tuple[str, ...], *responses: httpx.Response, asked: str = "") -> None:
    """None of ``marks`` in any response, once the caller's own question (``asked``, echoed back) is taken out."""
    for response in responses:
        text = response.text.replace(asked, "").replace(json.dumps(asked)[1:-1], "") if asked else response.text
        for mark in marks:
            assert mark.lower() not in text.lower(), (mark, response.request.url, text[:300])


def test_each_reader_gets_cited_answers_from_their_own_collection(app: TestClient) -> None:
    for auth in (basic(HANNA), key(app)):
        answer = ask(app, auth, HR_QUESTION, "hr")
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert not body["refused"] and body["citations"]
        assert {c["source"].rsplit("/", 1)[-1] for c in body["citations"]} <= set(HR_DOCS)
        clean_of(FINANCE_MARKS, answer)
    finance = ask(app, basic(FINN), FINANCE_QUESTION, "finance")
    assert finance.status_code == 200 and finance.json()["citations"], finance.text
    assert "48.7" in finance.json()["answer"]
    clean_of(HR_MARKS, finance)


def test_a_question_only_the_forbidden_collection_answers_is_refused_and_never_searches_it(
    app: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    touches = Touches(monkeypatch)
    for auth in (basic(HANNA), key(app)):
        answer = ask(app, auth, FINANCE_QUESTION, "hr")
        assert answer.status_code == 200 and answer.json()["refused"], answer.text
        assert not answer.json()["citations"]
        stream = app.post("/api/ask/stream", json={"question": FINANCE_QUESTION, "collection": "hr"}, **auth)
        assert stream.status_code == 200 and answer_event(stream)["refused"], stream.text
        chat = app.post(
            "/v1/chat/completions",
            json={"model": "docbot/hr", "messages": [{"role": "user", "content": FINANCE_QUESTION}]},
            **auth,
        )
        assert chat.status_code == 200, chat.text
        clean_of(FINANCE_MARKS, answer, stream, chat, asked=FINANCE_QUESTION)
        # naming the forbidden collection, alone or beside a readable one: refused before anything is searched
        for collection in ("finance", ["hr", "finance"]):
            clean_of(FINANCE_MARKS[:-1], ask(app, auth, FINANCE_QUESTION, collection), asked=FINANCE_QUESTION)
    assert touches.of("hr") > 0  # the spy sees the searches that did happen
    assert touches.of("finance") == 0, touches.counts


def test_a_forbidden_collection_is_answered_exactly_like_a_missing_one(app: TestClient) -> None:
    def refusal(status_and_body: httpx.Response, name: str) -> tuple[int, str]:
        return status_and_body.status_code, status_and_body.text.replace(name, "NAME")

    question = {"role": "user", "content": FINANCE_QUESTION}
    doors: list[Callable[[dict[str, Any], str], httpx.Response]] = [
        lambda auth, name: ask(app, auth, FINANCE_QUESTION, name),
        lambda auth, name: ask(app, auth, FINANCE_QUESTION, ["hr", name]),
        lambda auth, name: app.post("/api/ask/stream", json={"question": FINANCE_QUESTION, "collection": name}, **auth),
        lambda auth, name: app.get("/api/documents", params={"collection": name}, **auth),
        lambda auth, name: app.post(
            "/v1/chat/completions", json={"model": f"docbot/{name}", "messages": [question]}, **auth
        ),
    ]
    for auth in (basic(HANNA), key(app)):
        for door in doors:
            forbidden, missing = door(auth, "finance"), door(auth, "payroll")
            assert forbidden.status_code == 404, forbidden.text
            assert refusal(forbidden, "finance") == refusal(missing, "payroll")
            clean_of(FINANCE_MARKS[:-1], forbidden, asked=FINANCE_QUESTION)


def test_lists_name_only_what_the_caller_may_read(app: TestClient) -> None:
    for auth in (basic(HANNA), key(app)):
        models = app.get("/v1/models", **auth)
        assert [m["id"] for m in models.json()["data"]] == ["docbot/hr"], models.text
        assert app.get("/api/collections", **auth).json() == ["hr"]
        documents = app.get("/api/documents", params={"collection": "hr"}, **auth)
        assert documents.status_code == 200 and len(documents.json()["documents"]) == len(HR_DOCS)
        clean_of(FINANCE_MARKS, models, documents, app.get("/api/collections", **auth))
        assert app.get("/api/documents", **auth).status_code == 404  # the default collection: granted to nobody
    assert set(app.get("/api/collections", **basic(ANN)).json()) == {"default", "hr", "finance"}
    assert app.get("/api/collections", **basic(FINN)).json() == ["finance"]
    openapi = app.get("/openapi.json", **basic(HANNA))
    assert openapi.status_code == 200
    clean_of(FINANCE_MARKS[:-1], openapi)


def test_the_scoped_key_answers_on_v1_and_the_embed_page_carries_nothing(app: TestClient) -> None:
    embed = app.get("/embed")
    assert embed.status_code == 200
    clean_of(FINANCE_MARKS + HR_MARKS, embed)
    chat = app.post(
        "/v1/chat/completions",
        json={"model": "docbot/hr", "messages": [{"role": "user", "content": HR_QUESTION}]},
        **key(app),
    )
    assert chat.status_code == 200
    assert json.loads(chat.text)["citations"]
