"""Nothing crosses a collection boundary: two collections with different readers, every door of the API tried
in-process (the whole app as ``docbot serve`` builds it, hashing embedder, real Chroma, grants in the real state
database). Each reader gets cited answers from their own collection only; a question only the other collection
answers is refused; no response (answer, citations, sources, errors, document listings, collection and model lists)
carries a word, source or title of the collection the caller may not read, and that collection's store is never
touched by their requests (counted on the store itself, not timed)."""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import gradio as gr
import httpx
import pytest
from answer_fixtures import clean_settings
from conftest import HASHING_COVERAGE
from fastapi.testclient import TestClient
from helpers import access_over
from leak_corpus import FINANCE_DOCS, FINANCE_MARKS, FINANCE_QUESTION, HR_DOCS, HR_MARKS, HR_QUESTION, write
from starlette.requests import Request

from app import build, build_library, create_app
from bot.access.policy import Identity, Role
from bot.access.readable_turns import HIDDEN_ANSWER, REMOVED_NOTE, readable_answer
from bot.answer.chat import Bot
from bot.answer.citations import Answer, Citation, view_path
from bot.documents.upload_inbox import UploadInbox
from bot.state.grants import GrantStore, Right
from bot.web.page import ChatPage
from index.collections import DEFAULT
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
    settings = clean_settings(
        root / "data", users=USERS, auth_failure_limit=1000, grants_cache_s=0, **HASHING_COVERAGE
    )  # a grant or revoke applies at the next request
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
    app.state.grants, app.state.library = grants, library
    with TestClient(app, base_url="http://127.0.0.1:7860") as client:
        client.timeout = 120
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


# --- the evidence viewer: a citation opens in its own collection, for its readers only ----------------------------


def test_a_citation_opens_in_the_viewer_from_its_collection_and_only_for_its_readers(
    app: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    hr = ask(app, basic(HANNA), HR_QUESTION, "hr").json()["citations"][0]
    finance = ask(app, basic(FINN), FINANCE_QUESTION, "finance").json()["citations"][0]
    assert "collection=hr" in hr["view_url"] and "collection=finance" in finance["view_url"]
    for auth in (basic(HANNA), key(app)):
        shown = app.get(hr["view_url"], **auth)
        assert shown.status_code == 200, shown.text
        assert hr["quote"] in shown.text.replace("&#x27;", "'")
        clean_of(FINANCE_MARKS, shown)
    opened = app.get(finance["view_url"], **basic(FINN))
    assert opened.status_code == 200 and "Zephyrine" in opened.text

    touches = Touches(monkeypatch)
    for auth in (basic(HANNA), key(app)):  # finance's citation: exactly the answer a collection that is not there gets
        forbidden = app.get(finance["view_url"], **auth)
        missing = app.get(finance["view_url"].replace("collection=finance", "collection=payroll"), **auth)
        assert forbidden.status_code == missing.status_code == 404
        assert forbidden.text.replace("finance", "NAME") == missing.text.replace("payroll", "NAME")
        clean_of(FINANCE_MARKS[:-1], forbidden)
        reference = finance["view_url"].split("?")[0]
        picture = app.get(f"{reference}/page.png", params={"page": 1, "collection": "finance"}, **auth)
        assert picture.status_code == 404
        clean_of(FINANCE_MARKS[:-1], picture)
        # the hr citation's chunk asked for in finance (or in the default collection, by an old link): not found
        assert app.get(hr["view_url"].replace("collection=hr", "collection=finance"), **auth).status_code == 404
        assert app.get(hr["view_url"].replace("&collection=hr", ""), **auth).status_code == 404
    assert touches.of("finance") == 0, touches.counts
    assert app.get(finance["view_url"], **basic(ANN)).status_code == 200  # an admin reads every collection
    assert app.get(hr["view_url"], **basic(FINN)).status_code == 404


# --- stored conversations after a revoke: what the caller can no longer read is not shown again -----------------


def page_request(user: tuple[str, str]) -> gr.Request:
    """A page event's request as the browser of ``user`` (signed in with HTTP Basic) sends it."""
    token = base64.b64encode(f"{user[0]}:{user[1]}".encode()).decode()
    headers = [(b"authorization", f"Basic {token}".encode())]
    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers, "query_string": b""}
    return gr.Request(request=Request(scope), session_hash=f"page-{user[0]}")


def test_after_a_revoke_a_reopened_conversation_no_longer_shows_that_collection(
    app: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    grants, library = app.app.state.grants, app.app.state.library  # type: ignore[attr-defined]
    grants.grant("finance", "user:hanna", Right.read)
    try:
        first = ask(app, basic(HANNA), FINANCE_QUESTION, ["hr", "finance"], keep=True)
        assert first.status_code == 200 and "48.7" in first.json()["answer"], first.text
        conversation = first.json()["conversation_id"]
        second = ask(app, basic(HANNA), HR_QUESTION, "hr", conversation_id=conversation)
        assert second.status_code == 200 and second.json()["citations"], second.text

        settings = library.settings
        default = library.services(DEFAULT)
        access = access_over(settings, default.database)
        inbox = UploadInbox(tmp_path / "inbox", settings.upload_cache_bytes)
        page = ChatPage(library.bot([DEFAULT]), settings, default.indexer, inbox, access, default.state, None, library)
        _, turns, *_ = page.open(conversation, {}, page_request(HANNA))
        assert "48.7" in turns[0].answer.text and turns[0].answer.citations  # still granted: shown as answered
    finally:
        grants.revoke("finance", "user:hanna")

    _, turns, messages, sources, _ = page.open(conversation, {}, page_request(HANNA))
    assert [t.answer.question for t in turns] == [FINANCE_QUESTION, HR_QUESTION]
    assert turns[0].answer.text == HIDDEN_ANSWER and not turns[0].answer.citations
    assert turns[1].answer.citations and "twenty-six weeks" in turns[1].answer.text  # hr: still readable
    shown = json.dumps(messages) + sources
    for mark in FINANCE_MARKS[1:-1]:  # the question (hanna's own words) stays; nothing the answer said does
        assert mark.lower() not in shown.lower(), mark

    histories: list[Any] = []
    condense = Bot.condense
    monkeypatch.setattr(Bot, "condense", lambda bot, q, h: histories.append(list(h)) or condense(bot, q, h))
    follow = ask(
        app, basic(HANNA), "And how long before the leave must it be requested?", "hr", conversation_id=conversation
    )
    assert follow.status_code == 200, follow.text
    assert histories and histories[-1][0] == (FINANCE_QUESTION, HIDDEN_ANSWER)
    clean_of(FINANCE_MARKS[1:-1], follow)


def test_a_partly_revoked_answer_keeps_the_sentences_its_readable_sources_support() -> None:
    answer = Answer(
        question="q",
        text="Leave is twenty-six weeks. [1] Revenue was 48.7 million. [2] Both apply. [1, 2]",
        citations=[_citation(1, "hr"), _citation(2, "finance")],
    )
    hanna = Identity("hanna", Role.reader, rights={"hr": Right.read})
    shown = readable_answer(answer, hanna, DEFAULT)
    assert shown.text == "Leave is twenty-six weeks. [1] Both apply. [1]"
    assert [c.number for c in shown.citations] == [1] and shown.notice == REMOVED_NOTE
    assert readable_answer(answer, Identity("ann", Role.admin, rights={}), DEFAULT) is answer
    assert readable_answer(answer, Identity("finn", Role.reader, rights={"finance": Right.read}), DEFAULT).text == (
        "Revenue was 48.7 million. [2] Both apply. [2]"
    )
    old = replace(answer, citations=[replace(c, collection="") for c in answer.citations])  # stored before collections
    assert readable_answer(old, hanna, DEFAULT).text == HIDDEN_ANSWER


def _citation(number: int, collection: str) -> Citation:
    return Citation(
        number=number,
        chunk_id=f"{number:032x}",
        source=f"{collection}.md",
        title=collection,
        page=None,
        passage="p",
        passage_start=0,
        passage_end=1,
        quote="p",
        quote_start=0,
        quote_end=1,
        support=1.0,
        supported=True,
        view_url=view_path(f"{number:032x}", 0, 1, collection),
        collection=collection,
    )
