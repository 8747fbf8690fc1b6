"""Collections against the real ``docbot serve`` (the bundled model, evidence coverage): two collections beside the
default one, asked through /api, /v1, the embed page and the chat page's collection picker in Chromium."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from live import LiveServer, child_env, live_server, screenshot

pytestmark = pytest.mark.server

DOCBOT = str(Path(sys.executable).with_name("docbot"))
WAIT_MS = 60_000

HR_POLICY = """---
tags: [policy]
---
# Annual leave policy

Every employee is entitled to twenty-eight days of paid annual leave per calendar year, including public holidays.

Leave must be requested through the HR portal at least two weeks in advance and approved by the line manager.

Up to five unused leave days may be carried over into the first quarter of the following year.
"""
ENG_RUNBOOK = """# Database failover runbook

When the primary PostgreSQL server stops answering, the on-call engineer promotes the standby replica with
pg_ctl promote and points the pgbouncer connection pooler at the new primary.

After a failover, rebuild the old primary as a streaming replica from a fresh base backup before the next deploy.
"""
LEAVE = "How many days of paid annual leave does an employee get?"
FAILOVER = "How does the on-call engineer promote the standby replica during a database failover?"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Seeds in ``default``, the leave policy in ``hr``, the failover runbook in ``eng`` (each indexed by the CLI)."""
    work = tmp_path_factory.mktemp("collections-live")
    env = {**child_env(), "DOCBOT_DATA_DIR": str(work / "data"), "DOCBOT_ANONYMOUS_ROLE": "admin"}
    for name, file, text in (("hr", "leave.md", HR_POLICY), ("eng", "failover.md", ENG_RUNBOOK)):
        folder = work / name
        folder.mkdir()
        (folder / file).write_text(text, encoding="utf-8")
        subprocess.run([DOCBOT, "index", "--collection", name, str(folder)], cwd=work, env=env, check=True)
    with live_server(work, env={"DOCBOT_ANONYMOUS_ROLE": "admin"}, timeout_s=600) as live:  # a busy machine
        yield live


def ask(server: LiveServer, question: str, **body: Any) -> dict[str, Any]:
    response = httpx.post(f"{server.url}/api/ask", json={"question": question, **body}, timeout=120)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_each_collection_answers_from_its_own_documents(server: LiveServer) -> None:
    hr = ask(server, LEAVE, collection="hr")
    assert not hr["refused"] and {c["collection"] for c in hr["citations"]} == {"hr"}
    assert "twenty-eight days" in " ".join(c["quote"] for c in hr["citations"])
    eng = ask(server, FAILOVER, collection="eng")
    assert not eng["refused"] and {c["source"] for c in eng["citations"]} == {"failover.md"}


def test_a_question_answered_only_elsewhere_is_refused_with_nothing_of_the_other_collection(server: LiveServer) -> None:
    refused = ask(server, LEAVE, collection="eng")
    assert refused["refused"] and refused["citations"] == []
    assert "twenty-eight" not in str(refused) and "leave.md" not in str(refused)
    both = ask(server, FAILOVER, collection=["hr", "eng"])
    assert not both["refused"] and {c["collection"] for c in both["citations"]} == {"eng"}


def test_v1_names_the_collection_in_the_model(server: LiveServer) -> None:
    models = httpx.get(f"{server.url}/v1/models", timeout=30).json()
    assert [m["id"] for m in models["data"]] == ["docbot", "docbot/eng", "docbot/hr"]
    body = {"model": "docbot/hr", "messages": [{"role": "user", "content": LEAVE}]}
    reply = httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=120).json()
    assert reply["model"] == "docbot/hr" and {c["collection"] for c in reply["citations"]} == {"hr"}
    body["model"] = "docbot/eng"
    refused = httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=120).json()
    assert refused["refused"] and "twenty-eight" not in str(refused)


@pytest.mark.browser
def test_the_embed_page_asks_its_data_collection(chromium: Any, server: LiveServer) -> None:
    context = chromium.new_context()
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    try:
        page.goto(f"{server.url}/embed#collection=hr")
        page.locator("#question").fill(LEAVE)
        page.locator("#send").click()
        page.locator("#log .sources .source").first.wait_for()
        text = page.locator("#log").inner_text()
        assert "twenty-eight days" in text and "leave.md" in text
        screenshot(page, "collections-embed")
    finally:
        context.close()


@pytest.mark.browser
def test_the_page_picker_steers_questions_documents_and_examples(chromium: Any, server: LiveServer) -> None:
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    try:
        page.goto(server.url)
        page.wait_for_selector(".docbot-status")
        picker = page.locator("#docbot-collections")
        picker.wait_for(state="visible")
        # pick hr alone: remove the default collection's token, then choose hr from the list
        picker.locator("input").click()
        page.get_by_role("option", name="hr", exact=True).click()
        picker.locator('[aria-label="Remove default"], .token:has-text("default") .token-remove').first.click()
        page.locator("#docbot-status-line").click()  # close the list
        page.wait_for_function(
            "() => document.querySelector('#docbot-status-line').innerText.includes('1 document ·')", timeout=WAIT_MS
        )
        page.locator("#docbot-question textarea").fill(LEAVE)
        page.locator("#docbot-question textarea").press("Enter")
        sources = page.locator("#src-turn-0")
        sources.wait_for(state="attached")
        assert "leave.md" in sources.inner_text() and "twenty-eight" in sources.inner_text()
        page.get_by_role("tab", name="Documents").click()
        table = page.locator("#docbot-documents")
        table.locator(".doc-table").wait_for()
        assert "Annual leave policy" in table.inner_text() and "isis" not in table.inner_text().lower()
        screenshot(page, "collections-picker")
    finally:
        context.close()


def test_eval_runs_a_question_set_against_one_collection(server: LiveServer, tmp_path: Path) -> None:
    """``docbot eval --collection``: the same set scores on the collection holding its documents, not on another."""
    questions = tmp_path / "hr.jsonl"
    item = {
        "id": "hr-1",
        "question": LEAVE,
        "answers": ["twenty-eight days"],
        "evidence": "entitled to twenty-eight days of paid annual leave",
        "answerable": True,
    }
    questions.write_text(json.dumps(item) + "\n", encoding="utf-8")
    env = {**child_env(), "DOCBOT_DATA_DIR": str(server.data_dir)}

    def hit_at_1(collection: str) -> float:
        out = tmp_path / f"run-{collection}"
        run = [DOCBOT, "eval", str(questions), "--collection", collection, "--out", str(out)]
        subprocess.run(run, cwd=tmp_path, env=env, check=True, capture_output=True, timeout=600)
        return float(json.loads((out / "results.json").read_text(encoding="utf-8"))["metrics"]["hit@1"])

    assert hit_at_1("hr") == 1.0
    assert hit_at_1("eng") == 0.0
