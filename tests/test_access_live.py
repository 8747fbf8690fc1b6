"""One access policy for every surface, against a real ``docbot serve`` on 127.0.0.1 (issue #13, findings 4, 6, 7, 8).

The page's events are called the way an attacker would: straight at ``/gradio_api/queue/join``, with whatever
session cookie (or none) the caller has, so a refusal here is the server's, not the page hiding a button.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from live import LiveServer, child_env, free_port, live_server
from test_ui_browser import add_document

from bot.web.upload_route import NOT_ALLOWED

pytestmark = pytest.mark.server
#: Five servers start in this module; on a busy shared machine loading the model can take minutes.
START_S = 300

ANN, ED, RITA = ("ann", "ann-pw-4417"), ("ed", "ed-pw-8023"), ("rita", "rita-pw-1290")
USERS = f"{ANN[0]}:{ANN[1]},{ED[0]}:{ED[1]},{RITA[0]}:{RITA[1]}:reader"
EMBED_KEY, OPS_KEY = "embed-key-7f3a61", "ops-key-19c2d4"
QUESTION = "What did coalition forces resume because of the growing ISIS force?"
NOTE = """# Harbour Notice

The harbour ferry to Skerrin Island leaves at seven every morning from pier four.
"""
CHAT = {"model": "docbot", "messages": [{"role": "user", "content": QUESTION}]}
#: Every route that hands out data or the API's description (health stays open).
GUARDED = [
    ("POST", "/api/ask", {"question": QUESTION}),
    ("POST", "/api/ask/stream", {"question": QUESTION}),
    ("GET", "/api/documents", None),
    ("GET", "/v1/models", None),
    ("POST", "/v1/chat/completions", CHAT),
    ("GET", "/openapi.json", None),
    ("GET", "/docs", None),
]


class PageCaller:
    """The chat page's HTTP side, spoken directly: sign in, upload to Gradio's cache, join the queue, read results."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=120)
        self.session = uuid.uuid4().hex[:11]
        self._config: dict[str, Any] | None = None

    def login(self, user: str, password: str) -> httpx.Response:
        return self.http.post("/login", data={"username": user, "password": password})

    def fn(self, api_name: str) -> int:
        if self._config is None:
            response = self.http.get("/config")
            response.raise_for_status()
            self._config = response.json()
        return next(d["id"] for d in self._config["dependencies"] if d["api_name"] == api_name)

    def join(self, fn_index: int, data: list[Any]) -> httpx.Response:
        body = {"fn_index": fn_index, "session_hash": self.session, "data": data, "event_data": None}
        return self.http.post("/gradio_api/queue/join", json=body)

    def outcome(self, api_name: str, data: list[Any]) -> dict[str, Any]:
        """Join ``api_name``'s event and wait for its final message (``success``, ``output``)."""
        joined = self.join(self.fn(api_name), data)
        joined.raise_for_status()
        event = joined.json()["event_id"]
        with self.http.stream("GET", "/gradio_api/queue/data", params={"session_hash": self.session}) as stream:
            for line in stream.iter_lines():
                if not line.startswith("data:"):
                    continue
                message = json.loads(line[5:])
                if message.get("event_id") == event and message.get("msg") == "process_completed":
                    return dict(message)
        raise AssertionError(f"no result for {api_name}")

    def run(self, api_name: str, data: list[Any]) -> list[Any]:
        message = self.outcome(api_name, data)
        assert message["success"], message
        return list(message["output"]["data"])

    def remove_refused(self, key: str) -> bool:
        """Try the remove event with ``key`` after loading the page (which fills this session's remove list).

        Refused either by Gradio (the key is not among the choices this caller was given) or by the handler."""
        self.run("overview", [])
        message = self.outcome("remove", [key])
        return not message["success"] or "needs the administrator" in message["output"]["data"][0]

    def upload_refused(self, name: str, text: str) -> bool:
        """Gradio's upload endpoint refuses this caller before caching anything (issue 27, finding 6)."""
        response = self.http.post("/gradio_api/upload", files=[("files", (name, text.encode(), "text/markdown"))])
        return response.status_code == 403 and NOT_ALLOWED in response.text

    def cached(self, name: str, text: str) -> dict[str, Any]:
        """A file uploaded the legitimate way (Gradio's upload endpoint), as the page's upload event takes it."""
        response = self.http.post("/gradio_api/upload", files=[("files", (name, text.encode(), "text/markdown"))])
        response.raise_for_status()
        (path,) = response.json()
        return {"path": path, "orig_name": name, "meta": {"_type": "gradio.FileData"}}


def documents(server: LiveServer, **auth: Any) -> list[dict[str, Any]]:
    response = httpx.get(f"{server.url}/api/documents", timeout=60, **auth)
    response.raise_for_status()
    return list(response.json()["documents"])


def titles(server: LiveServer, **auth: Any) -> set[str]:
    return {d["title"] for d in documents(server, **auth)}


def bearer(key: str) -> dict[str, dict[str, str]]:
    return {"headers": {"Authorization": f"Bearer {key}"}}


@pytest.fixture(scope="module")
def users_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("users"), env={"DOCBOT_USERS": USERS}, timeout_s=START_S) as live:
        yield live


@pytest.fixture(scope="module")
def keys_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    keys = f"{EMBED_KEY},ops:{OPS_KEY}:editor"
    with live_server(tmp_path_factory.mktemp("keys"), env={"DOCBOT_API_KEYS": keys}, timeout_s=START_S) as live:
        yield live


@pytest.fixture(scope="module")
def open_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A default install: nobody configured."""
    with live_server(tmp_path_factory.mktemp("open"), timeout_s=START_S) as live:
        yield live


# --- finding 4 and 8: users alone protect everything, not just the page ------------------------------


@pytest.mark.parametrize(("method", "path", "body"), GUARDED, ids=[p for _, p, _ in GUARDED])
def test_with_only_users_set_anonymous_callers_get_401_everywhere(
    users_server: LiveServer, method: str, path: str, body: object
) -> None:
    response = httpx.request(method, users_server.url + path, json=body, timeout=60)
    assert response.status_code == 401, response.text[:200]
    assert response.headers["www-authenticate"] == "Bearer, Basic"
    assert httpx.get(f"{users_server.url}/api/health").status_code == 200  # liveness stays open


def test_a_user_is_the_same_identity_on_the_api_by_basic_or_by_the_page_s_cookie(users_server: LiveServer) -> None:
    answer = httpx.post(f"{users_server.url}/api/ask", json={"question": QUESTION}, auth=RITA, timeout=120)
    assert answer.status_code == 200 and "air strikes" in answer.json()["answer"]
    assert httpx.get(f"{users_server.url}/openapi.json", auth=ANN).status_code == 200
    assert httpx.get(f"{users_server.url}/api/documents", auth=(ANN[0], "wrong")).status_code == 401
    page = PageCaller(users_server.url)
    assert page.login(*ED).status_code == 200
    assert page.http.get("/api/documents").status_code == 200  # the page's session cookie alone
    assert page.http.get("/docs").status_code == 200


# --- finding 4: keys alone protect the page and its events too --------------------------------------------


def test_with_only_keys_set_the_page_and_its_events_need_a_key(keys_server: LiveServer) -> None:
    stranger = PageCaller(keys_server.url)
    assert stranger.http.get("/config").status_code == 401
    signed_in = PageCaller(keys_server.url)
    assert signed_in.login("anyone", EMBED_KEY).status_code == 200  # a key in the login form's password box
    ask, upload = signed_in.fn("respond"), signed_in.fn("upload")
    for fn_index, data in ((ask, [QUESTION, [], {}]), (upload, [[]])):
        refused = stranger.join(fn_index, data)
        assert refused.status_code == 401, refused.text[:200]
    assert signed_in.login("anyone", "not-a-key").status_code == 400


def test_the_embed_key_can_ask_but_not_change_documents(keys_server: LiveServer) -> None:
    answer = httpx.post(f"{keys_server.url}/api/ask", json={"question": QUESTION}, timeout=120, **bearer(EMBED_KEY))
    assert answer.status_code == 200 and "air strikes" in answer.json()["answer"]
    page = PageCaller(keys_server.url)
    assert page.login("admin", EMBED_KEY).status_code == 200  # the user name typed does not make it an admin
    _, messages, *_ = page.run("respond", [QUESTION, [], {}])  # the question, the turns, the browser's saved state
    assert "air strikes" in json.dumps(messages)
    before = documents(keys_server, **bearer(EMBED_KEY))
    assert page.upload_refused("harbour.md", NOTE)
    _, report = page.run("upload", [[]])  # the event itself, called directly
    assert "adding documents needs an editor" in report and "Added" not in report
    assert page.remove_refused(before[0]["key"])
    assert documents(keys_server, **bearer(EMBED_KEY)) == before


def test_an_editor_key_in_the_login_form_can_add_documents(keys_server: LiveServer) -> None:
    page = PageCaller(keys_server.url)
    assert page.login("ops", OPS_KEY).status_code == 200
    _, report = page.run("upload", [[page.cached("harbour.md", NOTE)]])
    assert "Added: harbour.md" in report
    assert "Harbour Notice" in titles(keys_server, **bearer(EMBED_KEY))


# --- finding 6: document changes need the right role, checked by the server ------------------------------


def test_a_reader_calling_upload_and_remove_directly_is_refused(users_server: LiveServer) -> None:
    page = PageCaller(users_server.url)
    assert page.login(*RITA).status_code == 200
    before = documents(users_server, auth=RITA)
    assert page.upload_refused("harbour.md", NOTE)
    _, report = page.run("upload", [[]])  # the event itself, called directly
    assert "signed in as rita (reader)" in report and "Added" not in report
    assert page.remove_refused(before[0]["key"])
    assert documents(users_server, auth=RITA) == before
    assert not (users_server.data_dir / "uploads" / "harbour.md").exists()


def test_an_editor_may_add_but_only_the_admin_may_remove_a_cli_indexed_document(users_server: LiveServer) -> None:
    editor, admin = PageCaller(users_server.url), PageCaller(users_server.url)
    assert editor.login(*ED).status_code == 200 and admin.login(*ANN).status_code == 200
    seed = next(d for d in documents(users_server, auth=ED) if not d["uploaded"])
    assert editor.remove_refused(seed["key"])
    _, report = editor.run("upload", [[editor.cached("harbour.md", NOTE)]])
    assert "Added: harbour.md" in report
    admin.run("overview", [])
    (removed,) = admin.run("remove", [seed["key"]])
    assert "Removed" in removed
    assert seed["title"] not in titles(users_server, auth=ANN)


def test_a_default_install_answers_anyone_but_takes_no_document_changes(open_server: LiveServer) -> None:
    answer = httpx.post(f"{open_server.url}/api/ask", json={"question": QUESTION}, timeout=120)
    assert answer.status_code == 200 and "air strikes" in answer.json()["answer"]
    page = PageCaller(open_server.url)
    before = documents(open_server)
    assert page.upload_refused("harbour.md", NOTE)
    _, report = page.run("upload", [[]])  # the event itself, called directly
    assert "Adding documents needs an editor" in report and "DOCBOT_USERS" in report
    assert page.remove_refused(before[0]["key"])
    assert documents(open_server) == before


def test_serving_a_non_loopback_address_with_nobody_configured_is_refused(tmp_path: Path) -> None:
    env = child_env()
    env |= {"DOCBOT_DATA_DIR": str(tmp_path / "data"), "DOCBOT_PORT": str(free_port())}
    docbot = str(Path(sys.executable).with_name("docbot"))
    started = subprocess.run(
        [docbot, "serve", "--host", "0.0.0.0"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert started.returncode != 0
    (line,) = started.stderr.strip().splitlines()
    assert line.startswith("error: refusing to serve 0.0.0.0 with no login")
    for setting in ("DOCBOT_USERS", "DOCBOT_API_KEYS", "DOCBOT_ALLOW_ANONYMOUS_REMOTE=true"):
        assert setting in line


# --- finding 7: wrong passwords and keys are throttled per address --------------------------------------


@pytest.fixture
def throttled_server(tmp_path: Path) -> Iterator[LiveServer]:
    env = {
        "DOCBOT_USERS": f"{ANN[0]}:{ANN[1]}",
        "DOCBOT_API_KEYS": EMBED_KEY,
        "DOCBOT_AUTH_FAILURE_LIMIT": "3",
        "DOCBOT_AUTH_FAILURE_WINDOW_S": "4",
    }
    with live_server(tmp_path, env=env, timeout_s=START_S) as live:
        yield live


def wait_out(response: httpx.Response) -> None:
    assert response.status_code == 429 and 1 <= int(response.headers["retry-after"]) <= 4
    time.sleep(int(response.headers["retry-after"]) + 0.5)


def test_wrong_passwords_and_wrong_keys_lock_the_address_out(throttled_server: LiveServer) -> None:
    url = throttled_server.url
    page = PageCaller(url)
    assert [page.login(ANN[0], f"guess-{n}").status_code for n in range(3)] == [400, 400, 400]
    locked = page.login(*ANN)  # the right password waits too: a success does not end a lockout
    assert locked.status_code == 429
    assert httpx.get(f"{url}/api/documents", **bearer(EMBED_KEY)).status_code == 429  # every attempt, any surface
    wait_out(locked)
    assert page.login(*ANN).status_code == 200
    # Failures are counted in a sliding window: waiting out a lockout lets one attempt through, while the guesses
    # above still weigh until two windows (2 x 4 s) have passed. Let them fade, then wrong keys count the same way.
    time.sleep(8.5)

    wrong = [httpx.get(f"{url}/api/documents", **bearer(f"guess-{n}")).status_code for n in range(3)]
    assert wrong == [401, 401, 401]
    over = httpx.get(f"{url}/api/documents", **bearer(EMBED_KEY))
    assert over.status_code == 429 and page.login(*ANN).status_code == 429
    assert page.http.get("/api/documents").status_code == 200  # a session already signed in carries on
    wait_out(over)
    assert httpx.get(f"{url}/api/documents", **bearer(EMBED_KEY)).status_code == 200


# --- an open page with accounts: anonymous readers ask, people sign in at /signin to add documents ------------


@pytest.fixture(scope="module")
def mixed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    env = {"DOCBOT_USERS": f"{ED[0]}:{ED[1]}:editor", "DOCBOT_ANONYMOUS_ROLE": "reader"}
    with live_server(tmp_path_factory.mktemp("mixed"), env=env, timeout_s=START_S) as live:
        yield live


@pytest.mark.browser
def test_an_open_page_refuses_anonymous_uploads_and_signs_editors_in_at_signin(
    mixed_server: LiveServer, chromium: Any, tmp_path: Path
) -> None:
    anonymous = PageCaller(mixed_server.url)
    assert anonymous.upload_refused("harbour.md", NOTE)
    _, report = anonymous.run("upload", [[]])  # the event itself, called directly
    assert "sign in at /signin" in report and "Added" not in report

    context = chromium.new_context()
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto(mixed_server.url)
        page.get_by_role("tab", name="Documents").click()
        page.locator("#docbot-add-note", has_text="sign in at /signin").wait_for()
        assert not page.locator("#docbot-upload").is_visible()

        page.goto(f"{mixed_server.url}/signin")
        page.get_by_label("User name").fill(ED[0])
        page.get_by_label("Password or API key").fill("wrong")
        page.get_by_role("button", name="Sign in").click()
        page.get_by_text("Wrong user name, password or key.").wait_for()
        page.get_by_label("Password or API key").fill(ED[1])
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_selector(".docbot-status")
        page.get_by_role("tab", name="Documents").click()
        note = tmp_path / "harbour.md"
        note.write_text(NOTE)
        add_document(page, note)
    finally:
        context.close()
