"""Identity from the wiki and grants on a real ``docbot serve`` behind a real nginx (the wiki's reverse proxy) on
loopback: the proxy's user and groups headers sign readers in, only when they come from the trusted proxy; a grant
made with ``docbot access`` applies to the running server without a restart."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from live import LiveServer, child_env, live_server
from wiki_proxy import PROXY_ADDRESS, WikiProxy, wiki_proxy

pytestmark = pytest.mark.server

QUESTION = "What did coalition forces resume because of the growing ISIS force?"
PASSWORDS = {"alice": "alice-wiki-pw", "bob": "bob-wiki-pw"}
GROUPS = {"alice": "hr-team,staff", "bob": "eng"}
ANN = ("ann", "ann-docbot-pw")
SERVER_ENV = {
    "DOCBOT_PROXY_AUTH": "true",
    "DOCBOT_TRUSTED_PROXIES": PROXY_ADDRESS,
    "DOCBOT_USERS": "ann:ann-docbot-pw:admin",
    "DOCBOT_ANONYMOUS_ROLE": "none",
    "DOCBOT_GRANTS_CACHE_S": "0.5",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("wiki"), SERVER_ENV, timeout_s=300) as running:
        yield running


@pytest.fixture(scope="module")
def proxy(server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WikiProxy]:
    with wiki_proxy(tmp_path_factory.mktemp("proxy"), server.url, PASSWORDS, GROUPS) as running:
        yield running


def access_cli(server: LiveServer, *args: str, check: bool = True) -> str:
    docbot = str(Path(sys.executable).with_name("docbot"))
    env = {**child_env(), "DOCBOT_DATA_DIR": str(server.data_dir)}
    done = subprocess.run([docbot, "access", *args], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 or not check, done.stderr
    return done.stdout


def ask(url: str, user: str | None = None, **headers: str) -> httpx.Response:
    auth = (user, PASSWORDS[user]) if user else None
    return httpx.post(f"{url}/api/ask", json={"question": QUESTION}, auth=auth, headers=headers, timeout=120)


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
