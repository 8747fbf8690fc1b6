"""Collections and filters through /api and /v1 (fast tier: the whole app in-process, the hashing embedder) and
``docbot collections`` through the CLI runner."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from answer_fixtures import clean_settings
from conftest import HASHING_COVERAGE
from fastapi import FastAPI
from fastapi.testclient import TestClient
from helpers import access_over
from test_collections import ENG_DEPLOY, ENG_ONCALL, HR_LEAVE, HR_SICK, write
from typer.testing import CliRunner

from app import Library, build_library
from bot.access.policy import Access
from bot.cli import app as cli
from bot.state.database import Database
from bot.state.uploads import NewUpload, UploadStore
from bot.web.api import install_api
from bot.web.edge import AnswerSlots
from index.collections import DEFAULT
from index.hashing import HashingEmbedder

KEY = "test-collections-key-8c1d"
LEAVE = "How many days of annual leave do employees get?"
DEPLOY = "How do we deploy the billing service with the blue green pipeline?"


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Library:
    root = tmp_path_factory.mktemp("collections-api")
    settings = clean_settings(root / "data", api_keys=KEY, **HASHING_COVERAGE)
    library = build_library(settings, embedder=HashingEmbedder())
    docs = write(
        root / "docs",
        {"hr/leave.md": HR_LEAVE, "hr/sick.txt": HR_SICK, "eng/deploy.txt": ENG_DEPLOY, "eng/oncall.md": ENG_ONCALL},
    )
    library.services("hr", create=True).indexer.run([docs / "hr"])
    library.services("eng", create=True).indexer.run([docs / "eng"])
    library.services(DEFAULT).indexer.run([docs])
    return library


@pytest.fixture(scope="module")
def api(library: Library) -> Iterator[TestClient]:
    """/api and /v1 as create_app installs them, without the page (its Gradio import would double this module's
    time; the page's picker has a browser test of its own)."""
    app = FastAPI()
    settings, state = library.settings, library.state
    install_api(app, library, settings, Access.from_settings(settings, state), AnswerSlots(4), state)
    with TestClient(app, base_url="http://127.0.0.1:7860", headers={"Authorization": f"Bearer {KEY}"}) as client:
        yield client


def ask(api: TestClient, **body: object) -> dict:
    response = api.post("/api/ask", json={"question": LEAVE} | body)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_question_goes_to_the_collection_it_names(api: TestClient) -> None:
    hr = ask(api, collection="hr")
    assert not hr["refused"] and {c["collection"] for c in hr["citations"]} == {"hr"}
    assert hr["citations"][0]["source"] == "leave.md"
    eng = ask(api, collection="eng")
    assert all(c["collection"] == "eng" for c in eng["citations"])
    assert "leave.md" not in {c["source"] for c in eng["citations"]}


def test_several_collections_answer_as_one(api: TestClient) -> None:
    both = api.post("/api/ask", json={"question": DEPLOY, "collection": ["hr", "eng"]}).json()
    assert not both["refused"] and both["citations"][0]["collection"] == "eng"
    plain = ask(api)  # no collection: the default one, which holds everything
    assert {c["collection"] for c in plain["citations"]} == {DEFAULT}


def test_a_missing_collection_and_a_bad_name(api: TestClient) -> None:
    missing = api.post("/api/ask", json={"question": LEAVE, "collection": "finance"})
    assert missing.status_code == 404 and missing.json()["detail"] == "no collection 'finance' that you may read"
    bad = api.post("/api/ask", json={"question": LEAVE, "collection": "../hr"})
    assert bad.status_code == 422 and "not a collection name" in bad.json()["detail"]
    many = api.post("/api/ask", json={"question": LEAVE, "collection": ["hr"] * 21})
    assert many.status_code == 422


def test_the_where_filter(api: TestClient) -> None:
    only_txt = ask(
        api, question="Sick leave: after how many days of absence is a doctor's note needed?", where={"type": "txt"}
    )
    assert only_txt["citations"] and all(c["source"].endswith(".txt") for c in only_txt["citations"])
    eng_only = ask(api, where={"path": "eng/"})
    assert all(c["source"].startswith("eng/") for c in eng_only["citations"])
    wrong = api.post("/api/ask", json={"question": LEAVE, "where": {"colour": "red"}})
    assert wrong.status_code == 422 and "unknown filter key colour" in wrong.json()["detail"]
    streamed = api.post("/api/ask/stream", json={"question": LEAVE, "where": {"after": "soon"}})
    assert streamed.status_code == 422 and "a date like" in streamed.json()["detail"]


def test_documents_and_the_collection_list(api: TestClient) -> None:
    assert api.get("/api/collections").json() == [DEFAULT, "eng", "hr"]
    hr = api.get("/api/documents", params={"collection": "hr"}).json()["documents"]
    assert sorted(d["source"] for d in hr) == ["leave.md", "sick.txt"]
    assert api.get("/api/documents", params={"collection": "nope"}).status_code == 404


def test_v1_models_and_model_names(api: TestClient) -> None:
    client = openai.OpenAI(base_url=f"{api.base_url}/v1", api_key=KEY, max_retries=0, http_client=api)
    assert [m.id for m in client.models.list().data] == ["docbot", "docbot/eng", "docbot/hr"]
    reply = client.chat.completions.create(model="docbot/hr", messages=[{"role": "user", "content": LEAVE}])
    assert reply.model == "docbot/hr"
    assert {c["collection"] for c in reply.model_extra["citations"]} == {"hr"}
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="docbot/finance", messages=[{"role": "user", "content": LEAVE}])
    chunks = list(
        client.chat.completions.create(model="docbot/eng", messages=[{"role": "user", "content": DEPLOY}], stream=True)
    )
    assert {chunk.model for chunk in chunks} == {"docbot/eng"}


def test_the_collections_command(library: Library, tmp_path: Path) -> None:
    env = {"DOCBOT_DATA_DIR": str(library.settings.data_dir)}
    listed = CliRunner().invoke(cli, ["collections"], env=env)
    assert listed.exit_code == 0, listed.output
    rows = {line.split()[0]: line.split() for line in listed.output.splitlines()[1:]}
    assert rows["hr"][1:3] == ["2", "2"] and rows[DEFAULT][1:3] == ["4", "4"]
    runner = CliRunner()
    assert runner.invoke(cli, ["collections", "create", "tmp-x"], env=env).exit_code == 0
    uploads, chroma = UploadStore(Database.for_settings(library.settings)), library.collections.chroma_name
    uploads.keep(chroma("tmp-x"), [NewUpload("a.txt", "/uploads", b"A note.", "ann")])
    assert runner.invoke(cli, ["collections", "rename", "tmp-x", "tmp-y"], env=env).exit_code == 0
    assert set(uploads.records(chroma("tmp-y"))) == {"a.txt"}, "an upload's record follows its collection"
    refused = runner.invoke(cli, ["collections", "delete", "tmp-y"], env=env, input="n\n")
    assert refused.exit_code == 1 and "nothing was deleted" in refused.output
    assert "tmp-y" in library.collections.names()
    confirmed = runner.invoke(cli, ["collections", "delete", "tmp-y"], env=env, input="y\n")
    assert confirmed.exit_code == 0 and "tmp-y" not in library.collections.names()
    assert uploads.records(chroma("tmp-y")) == {}, "a deleted collection's uploads stayed in the database"
    bad = runner.invoke(cli, ["collections", "create", "Tmp"], env=env)
    assert bad.exit_code == 2 and "not a collection name" in bad.output
    missing = runner.invoke(cli, ["ask", "--collection", "nope", LEAVE], env=env)
    assert missing.exit_code == 2 and "there is no collection 'nope'" in missing.output
    where = runner.invoke(cli, ["ask", "--where", "type", LEAVE], env=env)
    assert where.exit_code == 2 and "is not key=value" in where.output


def test_the_page_follows_the_picked_collections_and_chips(library: Library, tmp_path: Path) -> None:
    """The page's handlers in-process: what one session picks steers its answers, documents and filter."""
    import gradio as gr

    from bot.documents.upload_inbox import UploadInbox
    from bot.web.page import ChatPage

    settings = library.settings.model_copy(update={"anonymous_role": "reader"})
    inbox = UploadInbox(tmp_path / "inbox", settings.upload_cache_bytes)
    default = library.services(DEFAULT)
    page = ChatPage(
        library.bot([DEFAULT]),
        settings,
        default.indexer,
        inbox,
        access_over(settings, default.database),
        default.state,
        None,
        library,
    )
    ann, bob = gr.Request(session_hash="ann"), gr.Request(session_hash="bob")

    page.pick(["hr"], ann)
    page.pick(["nope", "eng"], bob)  # a name that is no collection is dropped
    assert page.scope(ann).names == ["hr"] and page.scope(bob).names == ["eng"]
    *_, (_, _, sources, turns, _, _) = page.respond(LEAVE, [], None, ann)
    assert {c.collection for c in turns[-1].answer.citations} == {"hr"} and "leave.md" in sources

    outputs = page.overview(ann)
    table, picker, chips = outputs[2], outputs[-2], outputs[-1]
    assert "sick.txt" in table and "deploy" not in table
    assert picker.choices == [(n, n) for n in (DEFAULT, "eng", "hr")] and picker.value == ["hr"]
    assert {"type=md", "type=txt", "tag=policy"} <= {value for value, _ in chips.choices}

    assert page.filter_chips(["type=txt"], ann) == ""
    assert page.scope(ann).where is not None and page.scope(ann).where.types == ("txt",)
    sick = "How many days of sick leave before a doctor's note is needed?"
    *_, (_, _, _, turns, _, _) = page.respond(sick, [], None, ann)
    assert {c.source for c in turns[-1].answer.citations} == {"sick.txt"}
    assert "is ignored" in page.filter_chips(["nonsense"], ann)
    assert page.scope(ann).where is None and page.scope(bob).where is None
