"""Issue 27, finding 10, against a real ``docbot serve`` on 127.0.0.1: what an anonymous caller can make the server
keep. Every anonymous ``/api/ask`` stored a conversation forever (about 34 KB each, listed to nobody), and twenty
up-votes on one answer from one visitor were twenty rows."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator

import httpx
import pytest
from live import LiveServer, live_server, stored_votes
from page_events import run_event
from test_access_live import PageCaller

from bot.state.database import DEFAULT_FILE

pytestmark = pytest.mark.server

ANN = ("ann", "ann-pw-6417")
QUESTION = "What did coalition forces resume because of the growing ISIS force?"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    env = {
        "DOCBOT_USERS": f"{ANN[0]}:{ANN[1]}:editor",
        "DOCBOT_ANONYMOUS_ROLE": "reader",
        "DOCBOT_RATE_LIMIT_PER_MINUTE": "1000",
    }
    with live_server(tmp_path_factory.mktemp("retention"), env=env, timeout_s=300) as live:
        yield live


def stored(server: LiveServer) -> tuple[int, int]:
    """(conversations, turns) in the server's state database."""
    with sqlite3.connect(server.data_dir / DEFAULT_FILE) as db:
        conversations = db.execute("SELECT count(*) FROM conversations").fetchone()[0]
        turns = db.execute("SELECT count(*) FROM conversation_turns").fetchone()[0]
    return conversations, turns


def ask(server: LiveServer, body: dict[str, object]) -> dict[str, object]:
    response = httpx.post(f"{server.url}/api/ask", json=body, timeout=120)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_anonymous_asks_store_a_conversation_only_when_kept(server: LiveServer) -> None:
    before = stored(server)
    for n in range(20):
        assert ask(server, {"question": f"{QUESTION} ({n})"})["conversation_id"] is None
    with httpx.stream("POST", f"{server.url}/api/ask/stream", json={"question": QUESTION}, timeout=120) as stream:
        answer = [line for line in stream.iter_lines() if line.startswith("data:")][-1]
    assert json.loads(answer[5:])["conversation_id"] is None
    assert stored(server) == before  # nothing kept of 21 asks

    conversation = ask(server, {"question": QUESTION, "keep": True})["conversation_id"]
    assert isinstance(conversation, str) and conversation
    continued = ask(server, {"question": "And who carried out the attacks?", "conversation_id": conversation})
    assert continued["conversation_id"] == conversation
    assert stored(server) == (before[0] + 1, before[1] + 2)  # one conversation, its two turns


def test_twenty_up_votes_on_one_answer_are_one_vote(server: LiveServer) -> None:
    page = PageCaller(server.url)
    assert page.login(*ANN).status_code == 200
    page.run("respond", [QUESTION, [], {}])
    like = {"index": 1, "value": "", "liked": True}
    for _ in range(20):
        message = run_event(page.http, page.fn("feedback"), [None, {}], page.session, like)
        assert message["success"], message
    votes = [vote for vote in stored_votes(server.data_dir) if vote["question"] == QUESTION]
    assert [(vote["vote"], vote["user"]) for vote in votes] == [("up", "ann")]
