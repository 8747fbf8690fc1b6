"""Issue 27, findings 3 and 8, against a real ``docbot serve`` on 127.0.0.1: what proved a caller, not the name
they typed, owns their conversations and names their rate limit.

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

ANN = ("ann", "ann-pw-5521")
EMBED_KEY = "embed-key-8c21f0"
#: Page events a caller may start a minute: small, so that one caller can use them up within the test.
LIMIT = 8
WIDGET_QUESTION = "Who leads the Islamic State in Iraq?"
ANN_QUESTION = "What did coalition forces resume because of the growing ISIS force?"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    env = {
        "DOCBOT_USERS": f"{ANN[0]}:{ANN[1]}:editor",
        "DOCBOT_API_KEYS": EMBED_KEY,
        "DOCBOT_RATE_LIMIT_PER_MINUTE": str(LIMIT),
    }
    with live_server(tmp_path_factory.mktemp("owners"), env=env, timeout_s=300) as live:
        yield live


def asked(url: str, question: str, **auth: Any) -> str:
    """Ask through the API (the widget does this with its key); the stored conversation's id."""
    response = httpx.post(f"{url}/api/ask", json={"question": question}, timeout=120, **auth)
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
