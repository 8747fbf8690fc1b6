"""A running ``docbot serve`` follows a collection renamed, made anew and deleted by ``docbot collections`` in another
process (issue #27, finding 2): the name answers from the collection it names now, within seconds, and a deleted
collection's handle is never used again (no 503 naming its Chroma id or the store's folder)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from live import LiveServer, child_env, live_server

pytestmark = pytest.mark.server

DOCBOT = str(Path(sys.executable).with_name("docbot"))
#: A server start loads the model; on a busy shared machine that can take minutes.
START_S = 300
#: The issue's bound: within the store check interval (2 s by default), with room for a busy machine.
FOLLOW_S = 8.0
RITA = ("rita", "rita-pw-5521")
LEDGER = """# Finance ledger rules

The Corvane finance office closes the quarterly ledger on the ninth working day after each quarter ends.

Invoices above forty thousand krona need a second signature from the Corvane controller before payment.
"""
QUESTION = "When does the Corvane finance office close the quarterly ledger?"


def docbot(env: dict[str, str], *args: str) -> None:
    """The CLI, in a process of its own, as an operator runs it beside the server."""
    done = subprocess.run([DOCBOT, *args], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr


def chroma_ids(env: dict[str, str]) -> dict[str, str]:
    """Each collection's Chroma collection id, read by another process."""
    code = (
        "import json; from bot.config import Settings; from index.collections import Collections; "
        "print(json.dumps(Collections(Settings()).identities()))"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def ask(server: LiveServer, collection: str) -> httpx.Response:
    body = {"question": QUESTION, "collection": collection}
    return httpx.post(f"{server.url}/api/ask", json=body, auth=RITA, timeout=120)


def cites_the_ledger(answer: dict[str, Any]) -> bool:
    return any(c["source"] == "ledger.md" for c in answer["citations"]) or "ninth working day" in json.dumps(answer)


def test_a_renamed_collection_is_not_served_under_its_old_name_and_its_deletion_breaks_nothing(tmp_path: Path) -> None:
    env = {**child_env(), "DOCBOT_DATA_DIR": str(tmp_path / "data"), "DOCBOT_USERS": f"{RITA[0]}:{RITA[1]}:reader"}
    finance = tmp_path / "finance"
    finance.mkdir()
    (finance / "ledger.md").write_text(LEDGER, encoding="utf-8")
    docbot(env, "index", "--collection", "fin", str(finance))
    docbot(env, "access", "grant", "read", "--collection", "fin", "--user", RITA[0])
    with live_server(tmp_path, env={"DOCBOT_USERS": env["DOCBOT_USERS"]}, timeout_s=START_S) as server:
        before = ask(server, "fin")
        assert before.status_code == 200, before.text
        assert not before.json()["refused"] and cites_the_ledger(before.json()), before.text
        old_id = chroma_ids(env)["fin"]

        docbot(env, "collections", "rename", "fin", "fin-old")
        docbot(env, "collections", "create", "fin")
        docbot(env, "access", "grant", "read", "--collection", "fin", "--user", RITA[0])
        changed = time.monotonic()
        seen: list[str] = []
        while time.monotonic() - changed < FOLLOW_S:
            answer = ask(server, "fin")
            seen.append(f"{answer.status_code} {answer.text[:300]}")
            if answer.status_code == 200 and not cites_the_ledger(answer.json()):
                break
            time.sleep(0.25)
        else:
            pytest.fail(f"the new, empty fin still answered from the old one after {FOLLOW_S} s: {seen[-3:]}")
        assert answer.json()["refused"] and answer.json()["citations"] == []
        moved = ask(server, "fin-old")  # the grant followed the rename: the old documents, under their new name
        assert moved.status_code == 200 and cites_the_ledger(moved.json()), moved.text

        docbot(env, "collections", "delete", "fin-old", "--yes")
        deleted = time.monotonic()
        bodies: list[str] = []
        while time.monotonic() - deleted < FOLLOW_S:  # past the time a server may take to see the deletion
            answer, gone = ask(server, "fin"), ask(server, "fin-old")
            bodies += [answer.text, gone.text]
            assert answer.status_code == 200 and answer.json()["refused"], answer.text
            assert gone.status_code in (200, 404), gone.text
            time.sleep(0.25)
        assert gone.status_code == 404, gone.text
        store = str(server.data_dir / "chroma")
        assert not [body for body in bodies if old_id in body or store in body]
