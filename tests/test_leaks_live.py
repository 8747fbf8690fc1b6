"""The leak suite on a real ``docbot serve`` behind a real nginx (the wiki's reverse proxy) on loopback, readers
signed in by the wiki: the proxy's user and groups headers count only when they come from the trusted proxy; a grant
made with ``docbot access`` applies to the running server without a restart; two collections (``default`` holds HR's
documents, ``finance`` the finance report) with different readers, through ``/api``, ``/v1`` and the page in
Chromium: each reader gets cited answers from their own collection, and nothing of the other."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from leak_corpus import FINANCE_DOCS, FINANCE_MARKS, FINANCE_QUESTION, HR_DOCS, HR_MARKS, HR_QUESTION, write
from live import LiveServer, child_env, live_server
from wiki_proxy import PROXY_ADDRESS, WikiProxy, wiki_proxy

pytestmark = pytest.mark.server

QUESTION = HR_QUESTION
PASSWORDS = {"alice": "alice-wiki-pw", "bob": "bob-wiki-pw", "fiona": "fiona-wiki-pw", "gary": "gary-wiki-pw"}
GROUPS = {"alice": "hr-team,staff", "bob": "eng", "fiona": "finance-team,staff"}
ANN = ("ann", "ann-docbot-pw")
SERVER_ENV = {
    "DOCBOT_PROXY_AUTH": "true",
    "DOCBOT_TRUSTED_PROXIES": PROXY_ADDRESS,
    "DOCBOT_USERS": "ann:ann-docbot-pw:admin",
    "DOCBOT_ANONYMOUS_ROLE": "none",
    "DOCBOT_GRANTS_CACHE_S": "0.5",
}


def docbot(workdir: Path, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**child_env(), "DOCBOT_DATA_DIR": str(data_dir)}
    command = [str(Path(sys.executable).with_name("docbot")), *args]
    return subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    work = tmp_path_factory.mktemp("wiki")
    finance = docbot(
        work, work / "data", "index", "--collection", "finance", str(write(work / "finance", FINANCE_DOCS))
    )
    assert finance.returncode == 0, finance.stderr
    with live_server(work, SERVER_ENV, docs=write(work / "hr", HR_DOCS), timeout_s=300) as running:
        yield running


@pytest.fixture(scope="module")
def proxy(server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WikiProxy]:
    with wiki_proxy(tmp_path_factory.mktemp("proxy"), server.url, PASSWORDS, GROUPS) as running:
        yield running


def access_cli(server: LiveServer, *args: str, check: bool = True) -> str:
    done = docbot(server.data_dir.parent, server.data_dir, "access", *args)
    assert done.returncode == 0 or not check, done.stderr
    return done.stdout


def ask(
    url: str, user: str | None = None, question: str = QUESTION, headers: dict[str, str] | None = None, **more: Any
) -> httpx.Response:
    auth = (user, PASSWORDS[user]) if user else None
    body = {"question": question, **more}
    return httpx.post(f"{url}/api/ask", json=body, auth=auth, headers=headers, timeout=120)


def clean_of(marks: tuple[str, ...], response: httpx.Response, asked: str) -> None:
    text = response.text.replace(asked, "")
    for mark in marks:
        assert mark.lower() not in text.lower(), (mark, str(response.url), text[:300])


def status_until(check: Any, expected: int, timeout_s: float = 10) -> int:
    """The status ``check()`` returns, polled until it is ``expected`` (a grant applies within the cache time)."""
    deadline = time.monotonic() + timeout_s
    status = check().status_code
    while status != expected and time.monotonic() < deadline:
        time.sleep(0.3)
        status = check().status_code
    return status


def test_the_proxy_headers_from_anyone_but_the_proxy_are_ignored(server: LiveServer, proxy: WikiProxy) -> None:
    forged = {"Remote-User": "ann", "Remote-Groups": "hr-team", "X-Forwarded-User": "ann"}
    for method, path, body in (("POST", "/api/ask", {"question": QUESTION}), ("GET", "/v1/models", None)):
        response = httpx.request(method, f"{server.url}{path}", json=body, headers=forged, timeout=60)
        assert response.status_code == 401, (path, response.text)
    page = httpx.get(f"{server.url}/gradio_api/user", headers=forged, timeout=30)
    assert page.json() in (None, "")  # the page does not take the forged header either
    # through the proxy: signed in by the wiki, no docbot password
    answer = ask(proxy.url, "alice")
    assert answer.status_code == 200, answer.text
    assert answer.json()["citations"]
    # a reader cannot name someone else through the proxy: nginx writes the header itself
    assert httpx.get(f"{proxy.url}/gradio_api/user", auth=("bob", PASSWORDS["bob"]), headers=forged).json() == "bob"


def test_a_grant_applies_to_the_running_server_without_a_restart(server: LiveServer, proxy: WikiProxy) -> None:
    assert ask(proxy.url, "bob").status_code == 200  # no grants: the proxy role (reader) reads everything
    access_cli(server, "grant", "read", "--collection", "default", "--group", "hr-team")
    try:
        refused = status_until(lambda: ask(proxy.url, "bob"), 403)  # bob's groups have no grant now
        assert refused == 403
        assert ask(proxy.url, "alice").status_code == 200  # alice's group has
        ann = httpx.post(f"{server.url}/api/ask", json={"question": QUESTION}, auth=ANN, timeout=120)
        assert ann.status_code == 200  # a settings admin reads every collection
        access_cli(server, "grant", "read", "--collection", "default", "--user", "bob")
        assert status_until(lambda: ask(proxy.url, "bob"), 200) == 200
    finally:
        access_cli(server, "revoke", "--collection", "default", "--group", "hr-team", check=False)
        access_cli(server, "revoke", "--collection", "default", "--user", "bob", check=False)


@pytest.fixture(scope="module")
def granted(server: LiveServer, proxy: WikiProxy) -> WikiProxy:
    """HR's group reads the default collection (HR's documents), the finance team reads finance."""
    access_cli(server, "grant", "read", "--collection", "default", "--group", "hr-team")
    access_cli(server, "grant", "read", "--collection", "finance", "--group", "finance-team")
    assert status_until(lambda: ask(proxy.url, "bob"), 403) == 403
    return proxy


def test_each_wiki_reader_gets_their_own_collection_through_api_and_v1(granted: WikiProxy) -> None:
    url = granted.url
    hr = ask(url, "alice")
    assert hr.status_code == 200 and hr.json()["citations"], hr.text
    clean_of(FINANCE_MARKS, hr, QUESTION)
    refused = ask(url, "alice", FINANCE_QUESTION)
    assert refused.status_code == 200 and refused.json()["refused"], refused.text
    clean_of(FINANCE_MARKS, refused, FINANCE_QUESTION)
    forbidden, missing = ask(url, "alice", collection="finance"), ask(url, "alice", collection="payroll")
    assert forbidden.status_code == missing.status_code == 404
    assert forbidden.text.replace("finance", "X") == missing.text.replace("payroll", "X")
    finance = ask(url, "fiona", FINANCE_QUESTION, collection="finance")
    assert finance.status_code == 200 and "48.7" in finance.json()["answer"], finance.text
    clean_of(HR_MARKS, finance, FINANCE_QUESTION)
    for user, models in (("alice", ["docbot"]), ("fiona", ["docbot/finance"])):
        listed = httpx.get(f"{url}/v1/models", auth=(user, PASSWORDS[user]), timeout=30)
        assert [m["id"] for m in listed.json()["data"]] == models
        chat = httpx.post(
            f"{url}/v1/chat/completions",
            json={"model": "docbot/finance", "messages": [{"role": "user", "content": FINANCE_QUESTION}]},
            auth=(user, PASSWORDS[user]),
            timeout=120,
        )
        assert chat.status_code == (404 if user == "alice" else 200), chat.text
        if user == "alice":
            clean_of(FINANCE_MARKS[:-1], chat, FINANCE_QUESTION)
    documents = httpx.get(f"{url}/api/documents", auth=("alice", PASSWORDS["alice"]), timeout=30)
    assert len(documents.json()["documents"]) == len(HR_DOCS)
    clean_of(FINANCE_MARKS, documents, "")


def test_only_the_headers_the_proxy_writes_name_a_reader_and_groups(granted: WikiProxy) -> None:
    """Issue 27, finding 1: nginx drops a header it sets to an empty value and passes every other client header
    through; docbot reads exactly its one user header and one groups header, so nothing else a reader sends counts."""
    url = granted.url
    for forged in ({"X-Forwarded-Groups": "finance-team"}, {"Remote-Groups": "finance-team"}):
        # gary is in no wiki group (nginx sends no groups header at all), so no grant opens anything to him
        refused = ask(url, "gary", FINANCE_QUESTION, collection="finance", headers=forged)
        assert refused.status_code == 403 and "gary may read no collection" in refused.text, (forged, refused.text)
        clean_of(FINANCE_MARKS, refused, FINANCE_QUESTION)
    # a guest (the wiki's public pages: no sign-in, so no user header) naming docbot's admin
    forged = {"X-Forwarded-User": ANN[0], "Remote-User": ANN[0], "X-Forwarded-Groups": "finance-team"}
    guest = httpx.post(
        f"{url}/guest/api/ask", json={"question": FINANCE_QUESTION, "collection": "finance"}, headers=forged, timeout=60
    )
    assert guest.status_code == 401, guest.text
    assert httpx.get(f"{url}/guest/gradio_api/user", headers=forged, timeout=30).json() in (None, "")
    assert httpx.get(f"{url}/guest/api/health", timeout=30).status_code == 200  # the guest location does reach docbot


@pytest.mark.browser
@pytest.mark.parametrize(
    ("user", "own", "other", "marks", "title"),
    [
        ("alice", HR_QUESTION, FINANCE_QUESTION, FINANCE_MARKS[:-1], "Parental Leave Policy"),
        ("fiona", FINANCE_QUESTION, HR_QUESTION, HR_MARKS, "Third Quarter Results"),
    ],
)
def test_the_page_signs_the_wiki_reader_in_and_answers_from_their_collection_only(
    granted: WikiProxy, chromium: Any, user: str, own: str, other: str, marks: tuple[str, ...], title: str
) -> None:
    context = chromium.new_context(http_credentials={"username": user, "password": PASSWORDS[user]})
    page = context.new_page()
    page.set_default_timeout(180_000)
    try:
        page.goto(granted.url)
        page.wait_for_selector(".docbot-status")
        assert page.locator("input[type=password]").count() == 0  # no second login
        for question, answered in ((own, True), (other, False)):
            turn = page.locator("#docbot-sources .src-turn").count()
            page.locator("#docbot-question textarea").fill(question)
            page.locator("#docbot-question textarea").press("Enter")
            page.locator(f"#src-turn-{turn}").wait_for(state="attached")
            cards = page.locator(f"#src-turn-{turn} .src-card").count()
            assert (cards > 0) == answered, question
        page.get_by_role("tab", name="Documents").click()
        page.locator("#docbot-documents .doc-table").wait_for()
        text = page.content()
        # the caller's own question comes back (in the chat, in the past conversations' titles, maybe shortened):
        # only what it does not say would have come from the other collection
        for mark in (m for m in marks if m.lower() not in other.lower()):
            assert mark.lower() not in text.lower(), mark
        assert title in text
    finally:
        context.close()
