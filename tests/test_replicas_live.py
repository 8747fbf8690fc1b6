"""Two ``docbot serve`` replicas on loopback sharing one Chroma server and one PostgreSQL, as docs/deploy.md deploys
them (issue #18, "Done when"): a document uploaded through replica A is cited by replica B within 5 s; a
conversation started on A continues on B with its history; killing A mid-stream loses no stored conversation or
vote, and B keeps answering. And Debian's nginx running deploy/nginx.conf (moved to loopback ports) in front of
both: the API spread over both, answer streams passed through, plain http redirected.

Each replica has a data directory of its own (nothing shared on disk); the seed document is indexed into the Chroma
server beforehand by ``docbot index`` from a third data directory. The API is called with a named key (the same
identity on both replicas), the page as a signed-in user, the way a browser calls it (tests/page_events.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from live import (
    ROOT,
    ChromaServer,
    PostgresServer,
    child_env,
    chroma_server,
    free_port,
    postgres_server,
    stop_process,
    wait_http,
)
from page_events import add_files, page_client, run_event, upload, upload_event
from test_deploy_config import local_nginx_conf, nginx_binary

from bot.state.conversations import ConversationStore
from bot.state.database import Database
from bot.state.feedback import FeedbackStore
from bot.state.uploads import UploadStore

pytestmark = [pytest.mark.server, pytest.mark.slow]

DOCBOT = str(Path(sys.executable).with_name("docbot"))
#: Two replicas load the model at once on a shared 2-core machine (seen taking over 300 s under a load of 20).
START_S = 600
EDITOR = ("ann", "ann-pw-6620")
KEY = "ops-key-51c0e7"
AUTH = {"Authorization": f"Bearer {KEY}"}
#: The named key's conversations belong to ``key:ops`` on every replica (what proved the caller).
KEY_OWNER = "key:ops"
NOTE = """# Lighthouse Rota

The Skerrin lighthouse keeper hands over the lamp watch to the relief keeper every Thursday at noon.
"""
NOTE_QUESTION = "When does the Skerrin lighthouse keeper hand over the lamp watch?"
FIRST, FOLLOW_UP = "What group is the article about?", "What did coalition forces resume because of it?"
#: Seconds within which the other replica must cite an upload (the issue's figure).
FOLLOW_S = 5.0
BELL = (
    b"# Port Quill Harbour\n\n"
    b"The harbour master of Port Quill rings the fog bell every ninety seconds in thick weather.\n"
)
BELL_QUESTION = "How often does the harbour master of Port Quill ring the fog bell?"
#: How often each replica sweeps what removed uploads left on its disk, and how old a file nothing names must be.
SWEEP_S, SWEEP_GRACE_S = 1.0, 600.0
#: The public name deploy/nginx.conf serves.
PUBLIC_HOST = "docs.example.com"


@dataclass
class Replica:
    name: str
    url: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log: Path


@dataclass
class Cluster:
    chroma: ChromaServer
    postgres: PostgresServer
    a: Replica
    b: Replica
    database: Database


def _env(chroma: ChromaServer, postgres: PostgresServer, data_dir: Path) -> dict[str, str]:
    return {
        **child_env(),
        "DOCBOT_DATA_DIR": str(data_dir),
        "DOCBOT_HOST": "127.0.0.1",
        "DOCBOT_CHROMA_URL": chroma.url,
        "DOCBOT_DATABASE_URL": postgres.url,
        "DOCBOT_USERS": f"{EDITOR[0]}:{EDITOR[1]}:editor",
        "DOCBOT_API_KEYS": f"ops:{KEY}:editor",
        "DOCBOT_STORE_CHECK_INTERVAL_S": "1",
        "DOCBOT_UPLOAD_SWEEP_INTERVAL_S": str(SWEEP_S),
        "DOCBOT_UPLOAD_SWEEP_GRACE_S": str(SWEEP_GRACE_S),
        # nginx on loopback in front of both (deploy/nginx.conf), as in docs/deploy.md
        "DOCBOT_TRUSTED_PROXIES": "127.0.0.1",
        "DOCBOT_ALLOWED_HOSTS": f"{PUBLIC_HOST},127.0.0.1,localhost",
    }


@contextmanager
def _replica(name: str, workdir: Path, env: dict[str, str]) -> Iterator[Replica]:
    """``docbot serve`` with its own data directory and port (not yet waited for)."""
    port, log = free_port(), workdir / f"{name}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [DOCBOT, "serve"], cwd=workdir, env={**env, "DOCBOT_PORT": str(port)}, stdout=out, stderr=subprocess.STDOUT
        )
    replica = Replica(name, f"http://127.0.0.1:{port}", Path(env["DOCBOT_DATA_DIR"]), process, log)
    try:
        yield replica
    finally:
        stop_process(process)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    workdir = tmp_path_factory.mktemp("replicas")
    with ExitStack() as stack:
        chroma = stack.enter_context(chroma_server(workdir))
        postgres = stack.enter_context(postgres_server())
        indexed = subprocess.run(
            [DOCBOT, "index", str(ROOT / "seeds")],
            cwd=workdir,
            env=_env(chroma, postgres, workdir / "indexer"),
            capture_output=True,
            text=True,
        )
        assert indexed.returncode == 0, indexed.stderr
        a, b = (stack.enter_context(_replica(n, workdir, _env(chroma, postgres, workdir / n))) for n in ("a", "b"))
        for replica in (a, b):
            try:
                wait_http(f"{replica.url}/api/health", START_S, replica.process)
            except (TimeoutError, RuntimeError) as exc:
                raise AssertionError(f"replica {replica.name}: {exc}\n{replica.log.read_text()[-3000:]}") from exc
        database = Database.open(postgres.url, workdir / "reader")
        stack.callback(database.engine.dispose)
        yield Cluster(chroma, postgres, a, b, database)


def ask(replica: Replica, question: str, conversation: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"question": question, "keep": True}  # stored, to be continued on the other replica
    if conversation is not None:
        body["conversation_id"] = conversation
    response = httpx.post(f"{replica.url}/api/ask", json=body, headers=AUTH, timeout=120)
    assert response.status_code == 200, response.text
    return dict(response.json())


def cites(answer: dict[str, Any], source: str) -> bool:
    return any(c["source"].endswith(source) for c in answer["citations"])


def test_a_document_uploaded_through_one_replica_is_cited_by_the_other(cluster: Cluster) -> None:
    assert not cites(ask(cluster.b, NOTE_QUESTION), "lighthouse-rota.md")
    with page_client(cluster.a.url, login=EDITOR) as page:
        received = upload(page, "lighthouse-rota.md", NOTE.encode())
        assert received.status_code == 200, received.text
        report = add_files(page, upload_event(page), received.json())
    added = time.monotonic()
    assert "lighthouse-rota.md" in report and "error" not in report.lower(), report
    while not cites(answer := ask(cluster.b, NOTE_QUESTION), "lighthouse-rota.md"):
        assert time.monotonic() - added < FOLLOW_S, f"replica B did not cite the upload within {FOLLOW_S} s: {answer}"
        time.sleep(0.2)
    assert "Thursday at noon" in answer["answer"]
    listed = httpx.get(f"{cluster.b.url}/api/documents", headers=AUTH, timeout=60).json()["documents"]
    assert [d["title"] for d in listed].count("Lighthouse Rota") == 1, listed


def test_a_conversation_started_on_one_replica_continues_on_the_other(cluster: Cluster) -> None:
    first = ask(cluster.a, FIRST)
    conversation = first["conversation_id"]
    assert conversation and cites(first, "isis-resurgence-iraq.txt")

    follow_up = ask(cluster.b, FOLLOW_UP, conversation)
    assert follow_up["conversation_id"] == conversation
    # rewritten with the earlier question's words, which B knows only from the stored history
    query = follow_up["query"]
    assert "group" in query and "article" in query and "group" not in FOLLOW_UP, query
    assert cites(follow_up, "isis-resurgence-iraq.txt") and "[1]" in follow_up["answer"]

    stored = ConversationStore(cluster.database).answers(conversation, KEY_OWNER)
    assert [a.question for a in stored] == [FIRST, FOLLOW_UP]
    assert [a.text for a in stored] == [first["answer"], follow_up["answer"]]


def dependency(page: httpx.Client, elem_id: str, *, output: bool = False) -> int:
    """The fn_index of the event the component ``elem_id`` triggers by a click (``output``: the first event, the
    page's load, that writes it)."""
    config = page.get("/config").json()
    component = next(c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == elem_id)
    for found in config["dependencies"]:
        if (output and component in found["outputs"] and not found["inputs"]) or [component, "click"] in [
            list(t) for t in found.get("targets", [])
        ]:
            return int(found["id"])
    raise AssertionError(f"no event of {elem_id}")


def test_an_upload_through_a_is_viewed_listed_and_removed_through_b(cluster: Cluster) -> None:
    """The original and who uploaded it are in the database: B, which never had the file, shows the cited sentence in
    it, names its uploader and lets her remove it; A then no longer cites it, and neither disk keeps it."""
    with page_client(cluster.a.url, login=EDITOR) as page:
        received = upload(page, "port-quill.md", BELL)
        report = add_files(page, upload_event(page), received.json())
    assert "port-quill.md" in report and "error" not in report.lower(), report
    added = time.monotonic()
    while not cites(answer := ask(cluster.b, BELL_QUESTION), "port-quill.md"):
        assert time.monotonic() - added < FOLLOW_S, f"replica B did not cite the upload within {FOLLOW_S} s: {answer}"
        time.sleep(0.2)
    assert not (cluster.b.data_dir / "uploads").exists(), "B received no file: nothing of it may be on B's disk"
    # both replicas run on this machine: take away the file A received, which B could otherwise read where A
    # indexed it (on two machines it could not); it comes back, as an old file, once B has shown the original
    received_by_a = cluster.a.data_dir / "uploads" / "port-quill.md"
    aside = received_by_a.rename(cluster.a.data_dir / "port-quill.md.aside")

    citation = next(c for c in answer["citations"] if c["source"].endswith("port-quill.md"))
    view = httpx.get(f"{cluster.b.url}{citation['view_url']}", headers=AUTH, timeout=120)
    assert view.status_code == 200, view.text
    highlighted = view.text.split('<mark class="quote" id="cited">')[1].split("</mark>")[0]
    assert "fog bell every ninety seconds" in highlighted, view.text
    assert "view-notice" not in view.text, "B showed the index's text, not the original"  # read from the database
    assert list((cluster.b.data_dir / "originals").iterdir()), "B's copy of the original from the database"
    aside.rename(received_by_a)
    os.utime(received_by_a, (time.time() - 2 * SWEEP_GRACE_S,) * 2)

    listed = httpx.get(f"{cluster.b.url}/api/documents", headers=AUTH, timeout=60).json()["documents"]
    document = next(d for d in listed if d["source"] == "port-quill.md")
    assert document["uploaded"] and document["owner"] == EDITOR[0], document
    with page_client(cluster.b.url, login=EDITOR) as page:
        session = uuid.uuid4().hex
        shown = run_event(page, dependency(page, "docbot-documents", output=True), [], session)
        assert shown.get("success"), shown
        table = str(shown["output"]["data"][2])
        assert f"port-quill.md <small>(uploaded by {EDITOR[0]})</small>" in table, table
        removed = run_event(page, dependency(page, "docbot-remove"), [document["key"]], session)
    assert removed.get("success") and "Removed Port Quill Harbour" in str(removed["output"]["data"][0]), removed
    assert UploadStore(cluster.database).get("docbot", "port-quill.md") is None, "its record and original stayed"

    gone = time.monotonic()
    while cites(answer := ask(cluster.a, BELL_QUESTION), "port-quill.md"):
        assert time.monotonic() - gone < FOLLOW_S, f"replica A still cites the removed upload: {answer}"
        time.sleep(0.2)
    # nothing of it stays on either disk: A's received file and B's copy of the original go at their next sweep
    while received_by_a.exists() or list((cluster.b.data_dir / "originals").iterdir()):
        assert time.monotonic() - gone < FOLLOW_S + 2 * SWEEP_S, "a removed upload's file stayed on a replica's disk"
        time.sleep(0.2)


@contextmanager
def nginx_in_front(cluster: Cluster, folder: Path) -> Iterator[tuple[str, str]]:
    """Debian's nginx running deploy/nginx.conf on loopback ports, the two replicas as its upstreams:
    (its https URL, its http URL)."""
    http, https = free_port(), free_port()
    replicas = [r.url.removeprefix("http://") for r in (cluster.a, cluster.b)]
    conf = local_nginx_conf(folder, replicas, (http, https))
    log = folder / "nginx.out"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [nginx_binary(), "-p", str(folder), "-c", str(conf), "-g", "daemon off;"], stdout=out, stderr=out
        )
    try:
        wait_http(f"http://127.0.0.1:{http}/", 30, process)
        yield f"https://127.0.0.1:{https}", f"http://127.0.0.1:{http}"
    finally:
        stop_process(process)


def answered_asks(replica: Replica) -> int:
    """``/api/ask`` requests the replica answered 200, from its access log."""
    return replica.log.read_text(errors="replace").count('"POST /api/ask HTTP/1.1" 200')


def test_nginx_with_the_reference_config_spreads_the_api_and_passes_streams(cluster: Cluster, tmp_path: Path) -> None:
    with (
        nginx_in_front(cluster, tmp_path) as (https, http),
        httpx.Client(base_url=https, verify=False, headers={"Host": PUBLIC_HOST, **AUTH}, timeout=120) as front,
    ):
        before = [answered_asks(r) for r in (cluster.a, cluster.b)]
        for _ in range(6):
            assert front.post("/api/ask", json={"question": FIRST}).status_code == 200
        time.sleep(0.5)  # the access log line follows the response
        spread = [answered_asks(r) - n for r, n in zip((cluster.a, cluster.b), before, strict=True)]
        assert sum(spread) == 6 and min(spread) >= 1, f"nginx sent A and B {spread} of 6 questions"

        with front.stream("POST", "/api/ask/stream", json={"question": FIRST}) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            events = [line[7:] for line in response.iter_lines() if line.startswith("event: ")]
        assert "text" in events and events[-1] == "answer", events

        page = front.get("/")
        assert page.status_code == 200 and "<html" in page.text.lower()
        redirect = httpx.get(f"{http}/api/health", headers={"Host": PUBLIC_HOST})
        assert redirect.status_code == 301 and redirect.headers["location"] == f"https://{PUBLIC_HOST}/api/health"


class Prober(threading.Thread):
    """Asks replica B again and again until stopped: every status it got."""

    def __init__(self, replica: Replica) -> None:
        super().__init__(daemon=True)
        self.replica, self.statuses, self.halt = replica, list[int](), threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=60, headers=AUTH) as client:
            while not self.halt.is_set():
                self.statuses.append(client.post(f"{self.replica.url}/api/ask", json={"question": FIRST}).status_code)


def vote_on_the_page(replica: Replica, question: str) -> None:
    """Sign in on ``replica``'s page, ask there (the turn is stored in ann's conversation), vote the answer up."""
    with page_client(replica.url, login=EDITOR) as page:
        dependencies = page.get("/config").json()["dependencies"]
        respond, feedback = (
            next(d["id"] for d in dependencies if d.get("api_name") == name) for name in ("respond", "feedback")
        )
        session = uuid.uuid4().hex  # one page session: the vote is on the answer its state holds
        asked = run_event(page, respond, [question, None, {}], session)
        assert asked.get("success"), asked
        liked = run_event(page, feedback, [None, {}], session, {"index": 1, "value": "", "liked": True})
        assert liked.get("success"), liked


def stream_until_first_event(replica: Replica, question: str, conversation: str) -> tuple[bool, str]:
    """Open ``/api/ask/stream`` and kill ``replica`` (SIGKILL) as soon as its first event arrives: (whether the
    ``answer`` event had already come, the events read)."""
    events: list[str] = []
    body = {"question": question, "conversation_id": conversation}
    try:
        with httpx.stream("POST", f"{replica.url}/api/ask/stream", json=body, headers=AUTH, timeout=120) as response:
            assert response.status_code == 200
            for line in response.iter_lines():
                if line.startswith("event: "):
                    events.append(line[7:].strip())
                    if replica.process.poll() is None:
                        os.kill(replica.process.pid, signal.SIGKILL)
                        replica.process.wait()
    except httpx.HTTPError as exc:  # the connection cut by the kill
        events.append(type(exc).__name__)
    return "answer" in events, " ".join(events)


def test_killing_a_replica_mid_stream_loses_nothing_stored_and_the_other_answers(cluster: Cluster) -> None:
    vote_on_the_page(cluster.a, FIRST)
    conversation = ask(cluster.a, FIRST)["conversation_id"]
    ask(cluster.a, FOLLOW_UP, conversation)
    store, votes = ConversationStore(cluster.database), FeedbackStore(cluster.database)
    before = {
        "turns": [(a.question, a.text) for a in store.answers(conversation, KEY_OWNER)],
        "ann": [(s.id, s.title) for s in store.listed(f"user:{EDITOR[0]}")],
        "votes": list(votes.records()),
    }
    assert len(before["turns"]) == 2 and before["ann"] and before["votes"][-1]["vote"] == "up"

    prober = Prober(cluster.b)
    prober.start()
    try:
        answered, events = stream_until_first_event(cluster.a, "Why is that?", conversation)
        assert cluster.a.process.poll() == -signal.SIGKILL, events
        time.sleep(1)
    finally:
        prober.halt.set()
        prober.join(timeout=120)

    after_turns = [(a.question, a.text) for a in store.answers(conversation, KEY_OWNER)]
    assert after_turns[:2] == before["turns"], "a stored turn was lost or changed"
    if answered:  # the answer event is sent only after its turn is stored
        assert len(after_turns) == 3, events
    assert [(s.id, s.title) for s in store.listed(f"user:{EDITOR[0]}")] == before["ann"]
    assert list(votes.records()) == before["votes"]

    assert prober.statuses and set(prober.statuses) == {200}, prober.statuses
    continued = ask(cluster.b, FOLLOW_UP, conversation)
    assert continued["conversation_id"] == conversation
    assert httpx.get(f"{cluster.b.url}/api/health", timeout=30).status_code == 200
    print(json.dumps({"events_before_kill": events, "answered_before_kill": answered, "b_answers": prober.statuses}))
