"""Issue 27, findings 3, 7, 8 and 9, against a real ``docbot serve`` on 127.0.0.1: what proved a caller, not the name
they typed, owns their conversations and names their rate limit; another site cannot sign a visitor in or act on
their cookies; a page session's hash, learnt by someone else, reads nothing of it.

The embed key is public by design (it sits in the wiki page's HTML). Signing in to the page with it, under a
user's name, once listed every widget visitor's questions and used up that user's page rate limit.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from live import LiveServer, live_server
from test_access_live import PageCaller

pytestmark = pytest.mark.server

ANN, RITA = ("ann", "ann-pw-5521"), ("rita", "rita-pw-7730")
EMBED_KEY = "embed-key-8c21f0"
#: Page events a caller may start a minute: small, so that one caller can use them up within the test.
LIMIT = 8
WIDGET_QUESTION = "Who leads the Islamic State in Iraq?"
ANN_QUESTION = "What did coalition forces resume because of the growing ISIS force?"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    env = {
        "DOCBOT_USERS": f"{ANN[0]}:{ANN[1]}:editor,{RITA[0]}:{RITA[1]}:reader",
        "DOCBOT_API_KEYS": EMBED_KEY,
        "DOCBOT_RATE_LIMIT_PER_MINUTE": str(LIMIT),
    }
    with live_server(tmp_path_factory.mktemp("owners"), env=env, timeout_s=300) as live:
        yield live


def asked(url: str, question: str, **auth: Any) -> str:
    """Ask through the API (the widget does this with its key); the stored conversation's id."""
    response = httpx.post(f"{url}/api/ask", json={"question": question, "keep": True}, timeout=120, **auth)
    assert response.status_code == 200, response.text
    return str(response.json()["conversation_id"])


def past_conversations(page: PageCaller) -> str:
    """Everything the page's restore event shows this caller (its past-conversations list among it), as text."""
    return json.dumps(page.run("restore", [None]))


def test_a_shared_key_signed_in_under_a_user_s_name_lists_nobody_s_conversations(server: LiveServer) -> None:
    asked(server.url, WIDGET_QUESTION, headers={"Authorization": f"Bearer {EMBED_KEY}"})  # a widget visitor
    asked(server.url, ANN_QUESTION, auth=ANN)  # ann, on the API with her password

    ann = PageCaller(server.url)
    assert ann.login(*ANN).status_code == 200
    assert ANN_QUESTION[:30] in past_conversations(ann)  # her own conversation is listed to her

    intruder = PageCaller(server.url)
    assert intruder.login(ANN[0], EMBED_KEY).status_code == 200  # the public key, typed beside ann's name
    shown = past_conversations(intruder)
    assert WIDGET_QUESTION[:30] not in shown and ANN_QUESTION[:30] not in shown, shown


def test_a_shared_key_under_a_user_s_name_does_not_use_up_that_user_s_rate_limit(server: LiveServer) -> None:
    intruder = PageCaller(server.url)
    intruder.login(ANN[0], EMBED_KEY)
    statuses = [intruder.join(intruder.fn("restore"), [None]).status_code for _ in range(LIMIT + 2)]
    assert statuses[-1] == 429, statuses  # the intruder's own bucket is used up

    ann = PageCaller(server.url)
    ann.login(*ANN)
    assert ann.join(ann.fn("restore"), [None]).status_code == 200  # hers is her own


def test_a_cross_site_sign_in_or_page_event_is_refused(server: LiveServer) -> None:
    """Finding 9: a form on another site posting to /login signed the visitor in as whoever that site chose."""
    evil = {"Origin": "http://evil.example"}
    forged = httpx.post(f"{server.url}/login", data={"username": ANN[0], "password": ANN[1]}, headers=evil)
    assert forged.status_code == 403 and "cross-site" in forged.text, forged.text
    assert not forged.cookies and "set-cookie" not in forged.headers

    page = PageCaller(server.url)
    own = page.http.post("/login", data={"username": ANN[0], "password": ANN[1]}, headers={"Origin": server.url})
    assert own.status_code == 200 and page.http.cookies, own.text  # the page's own form still signs in
    body = {"fn_index": page.fn("restore"), "session_hash": page.session, "data": [None], "event_data": None}
    refused = page.http.post("/gradio_api/queue/join", json=body, headers=evil)  # on ann's cookies, from elsewhere
    assert refused.status_code == 403, refused.text
    assert page.http.post("/gradio_api/queue/join", json=body, headers={"Origin": server.url}).status_code == 200


def test_a_page_session_hash_alone_reads_nothing_and_is_not_logged(server: LiveServer) -> None:
    """Finding 7: Gradio keeps a page's turns by its session hash; rita, sending ann's, got ann's question back."""
    secret = "What did coalition forces resume because of the growing ISIS force?"
    ann = PageCaller(server.url)
    ann.login(*ANN)
    _, messages, *_ = ann.run("respond", [secret, [], {}])
    assert secret in json.dumps(messages)

    rita = PageCaller(server.url)
    rita.login(*RITA)
    rita.session = ann.session  # learnt from a log, a screen share
    joined = rita.join(rita.fn("respond"), ["And what else?", [], {}])
    assert joined.status_code == 403 and "someone else" in joined.text, joined.text
    stream = rita.http.get("/gradio_api/queue/data", params={"session_hash": ann.session})
    assert stream.status_code == 403 and secret not in stream.text
    with rita.http.stream("GET", f"/gradio_api/heartbeat/{ann.session}") as beat:
        assert beat.status_code == 403

    _, messages, *_ = ann.run("respond", ["Who leads the Islamic State in Iraq?", [], {}])  # hers still works
    assert secret in json.dumps(messages)
    assert ann.session not in server.log.read_text()  # the access log names no session hash
