"""Issue #13, findings 1, 5 and 6 (the upload cache), against a real ``docbot serve`` on loopback.

- The page's "Add to the index" event adds only files that this caller uploaded through this server's
  ``/gradio_api/upload``: a server path outside the cache, a symlink inside it pointing out, a missing path, another
  session's upload all get one refusal that does not tell whether the path exists, and nothing of them is indexed.
- A document someone else uploaded is not replaced (only by the administrator); a replacement that fails leaves the
  previous version answerable and its file in place.
- Gradio's cached copies are gone once added or refused; the cache has a size cap; leftovers are cleared at start.
"""

from __future__ import annotations

import html
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from live import LiveServer, live_server
from page_events import add_files, page_client, upload, upload_event

from bot.config import Settings
from bot.documents.upload_inbox import NOT_RECEIVED

pytestmark = pytest.mark.server

ADMIN, ANN, BOB = ("admin", "admin-pass-5120"), ("ann", "ann-pass-7731"), ("bob", "bob-pass-2290")
CACHE_CAP = 60_000
SECRET = "The vault combination of the Thornbury depot is 4471-0093-2218."
SECRET_QUESTION = "What is the vault combination of the Thornbury depot?"
QUOKKA = b"# Quokka Festival\n\nThe Quokka Festival is held on Rottnest Island in the second week of November.\n"
ANN_NOTE = b"The Larkspur ferry leaves the north pier at seven minutes past every hour.\n"
BOB_NOTE = b"The Larkspur ferry was cancelled for good; take the bus from the station instead.\n"
ADMIN_NOTE = b"The Larkspur ferry leaves the north pier at twenty minutes past every hour.\n"
HARBOUR = b"The harbour master of Port Quill rings the fog bell every ninety seconds in thick weather.\n"
BINARY = bytes(range(256)) * 157  # 40 kB that no loader reads as text
FERRY_QUESTION = "When does the Larkspur ferry leave the north pier?"
FOG_QUESTION = "How often does the harbour master of Port Quill ring the fog bell?"


def text_of(report: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", report))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    work = tmp_path_factory.mktemp("upload-rules")
    env = {
        "DOCBOT_USERS": ",".join(f"{name}:{password}" for name, password in (ADMIN, ANN, BOB)),
        "DOCBOT_UPLOAD_CACHE_BYTES": str(CACHE_CAP),
    }
    with live_server(work, env=env) as live:
        yield live


@pytest.fixture(scope="module")
def secret(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("server-files") / "secret.txt"
    path.write_text(SECRET + "\n")
    return path


def ask(server: LiveServer, question: str) -> str:
    """The API's answer, asked as the administrator (HTTP Basic, or the page's own cookie)."""
    with page_client(server.url, ADMIN) as client:
        response = client.post("/api/ask", json={"question": question}, auth=ADMIN)
    assert response.status_code == 200, response.text
    body = response.json()
    return body["answer"] + " " + " ".join(c["passage"] for c in body["citations"])


def cached_files(server: LiveServer) -> list[Path]:
    return [p for p in (server.data_dir / "gradio").rglob("*") if p.is_file() or p.is_symlink()]


def test_only_files_uploaded_by_this_caller_are_added(server: LiveServer, secret: Path) -> None:
    cache = server.data_dir / "gradio"
    planted = cache / "planted"
    planted.mkdir(parents=True, exist_ok=True)
    link = planted / "link.txt"
    link.symlink_to(secret)
    with page_client(server.url, ANN) as ann, page_client(server.url, ADMIN) as admin:
        event = upload_event(admin)
        anns = upload(ann, "quokka.md", QUOKKA)
        assert anns.status_code == 200, anns.text
        (anns_path,) = anns.json()
        # Outside the cache, Gradio's own check refuses (its text stays in the server log); inside, the page's.
        outside = {
            "a secret file": add_files(admin, event, [str(secret)]),
            "a missing file": add_files(admin, event, [str(secret.with_name("missing.txt"))]),
            "a symlink in the cache": add_files(admin, event, [str(link)]),
        }
        inside = {
            "a file planted in the cache": add_files(admin, event, [str(planted / "plain.txt")]),
            "a missing file in the cache": add_files(admin, event, [str(cache / "gone" / "secret.txt")]),
            "another user's upload": add_files(admin, event, [anns_path]),
        }
        (planted / "plain.txt").write_bytes(QUOKKA)  # exists only now: the same answer as when it was missing
        inside["a file planted in the cache, existing"] = add_files(admin, event, [str(planted / "plain.txt")])
        kept = Path(anns_path).exists()
        anns_report = text_of(add_files(ann, event, [anns_path]))  # ann herself may add it

    assert set(outside.values()) == {"error: None"}, outside  # one answer, whether the path exists or not
    assert len(set(inside.values())) == 1, inside
    refusal = text_of(next(iter(inside.values())))
    assert NOT_RECEIVED in refusal and "Added" not in refusal and "secret" not in refusal, refusal
    assert kept, "another session's refusal deleted ann's cached upload"
    assert "Added: quokka.md" in anns_report, anns_report
    copies = [p for p in cached_files(server) if not p.is_symlink() and SECRET.encode() in p.read_bytes()]
    assert not copies, "Gradio copied a server file into its cache (from where /gradio_api/file= serves it)"
    assert SECRET not in ask(server, SECRET_QUESTION)
    assert [p.name for p in (server.data_dir / "uploads").iterdir()] == ["quokka.md"]
    assert secret.read_text() == SECRET + "\n" and link.is_symlink(), "a refused path was touched"
    shutil.rmtree(planted)


def test_an_upload_is_added_and_its_cached_copy_deleted(server: LiveServer) -> None:
    with page_client(server.url, ANN) as ann:
        event = upload_event(ann)
        response = upload(ann, "The Quokka Festival.md", QUOKKA)
        (path,) = response.json()
        assert Path(path).is_file()
        report = text_of(add_files(ann, event, [path]))
        assert "Added: The_Quokka_Festival.md" in report, report
        again = text_of(add_files(ann, event, [path]))  # the copy is gone: it cannot be added twice
    assert NOT_RECEIVED in again, again
    assert not Path(path).exists() and not Path(path).parent.exists()
    assert (server.data_dir / "uploads" / "The_Quokka_Festival.md").read_bytes() == QUOKKA
    assert "Rottnest Island" in ask(server, "Where is the Quokka Festival held?")
    assert not cached_files(server)


def test_another_users_document_is_replaced_only_by_the_admin(server: LiveServer) -> None:
    target = server.data_dir / "uploads" / "larkspur.txt"
    with page_client(server.url, ANN) as ann, page_client(server.url, BOB) as bob:
        event = upload_event(ann)
        (path,) = upload(ann, "larkspur.txt", ANN_NOTE).json()
        assert "Added: larkspur.txt" in text_of(add_files(ann, event, [path]))
        (path,) = upload(bob, "larkspur.txt", BOB_NOTE).json()
        refused = text_of(add_files(bob, event, [path]))
    assert "Refused: larkspur.txt: a document of that name was added by someone else" in refused, refused
    assert not Path(path).exists(), "the refused upload's cached copy was kept"
    assert target.read_bytes() == ANN_NOTE
    assert "seven minutes past" in ask(server, FERRY_QUESTION)

    with page_client(server.url, ANN) as ann:  # the uploader may replace her own document
        (path,) = upload(ann, "larkspur.txt", ANN_NOTE.replace(b"seven", b"eleven")).json()
        assert "Updated: larkspur.txt" in text_of(add_files(ann, event, [path]))
    with page_client(server.url, ADMIN) as admin:  # and the administrator anyone's
        (path,) = upload(admin, "larkspur.txt", ADMIN_NOTE).json()
        assert "Updated: larkspur.txt" in text_of(add_files(admin, event, [path]))
    assert target.read_bytes() == ADMIN_NOTE
    assert "twenty minutes past" in ask(server, FERRY_QUESTION)


def test_a_failed_replacement_keeps_the_previous_version(server: LiveServer) -> None:
    target = server.data_dir / "uploads" / "fog-bell.txt"
    with page_client(server.url, ANN) as ann:
        event = upload_event(ann)
        (path,) = upload(ann, "fog-bell.txt", HARBOUR).json()
        assert "Added: fog-bell.txt" in text_of(add_files(ann, event, [path]))
        (path,) = upload(ann, "fog-bell.txt", BINARY).json()
        report = text_of(add_files(ann, event, [path]))
    assert "Failed: fog-bell.txt: binary data, not text" in report, report
    assert target.read_bytes() == HARBOUR
    assert "ninety seconds" in ask(server, FOG_QUESTION)
    listed = httpx.get(f"{server.url}/api/documents", auth=ADMIN, timeout=30).json()["documents"]
    assert any(d["source"] == "fog-bell.txt" for d in listed), listed
    assert not list((server.data_dir / "upload-staging").iterdir()), "a staged version was left behind"


def test_the_upload_cache_has_a_size_cap(server: LiveServer) -> None:
    with page_client(server.url, ANN) as ann:
        event = upload_event(ann)
        first = upload(ann, "first.txt", BINARY)
        assert first.status_code == 200, first.text
        over = upload(ann, "second.txt", BINARY)
        assert over.status_code == 413 and "The upload cache is full" in over.text, over.text
        assert "DOCBOT_UPLOAD_CACHE_BYTES" in over.text and "\n" not in over.text.strip()
        failed = text_of(add_files(ann, event, first.json()))  # not indexed: its copy goes all the same
        assert "Failed: first.txt: binary data, not text" in failed, failed
        fits = upload(ann, "second.txt", BINARY)
        assert fits.status_code == 200, fits.text
        assert "Failed: second.txt" in text_of(add_files(ann, event, fits.json()))
    assert not cached_files(server)


def test_leftovers_of_an_earlier_run_are_cleared_at_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from app import upload_inbox

    settings = Settings(data_dir=tmp_path / "data")
    leftover = settings.data_dir / "gradio" / "0123abcd" / "old.txt"
    leftover.parent.mkdir(parents=True)
    leftover.write_text("left by an earlier run")
    monkeypatch.delenv("GRADIO_TEMP_DIR", raising=False)
    inbox = upload_inbox(settings)
    assert inbox.folder == (settings.data_dir / "gradio").resolve()
    assert inbox.folder.is_dir() and not list(inbox.folder.iterdir())

    chosen = tmp_path / "operator-cache"  # a folder the operator chose may hold other programs' files: kept
    (chosen / "theirs.txt").parent.mkdir()
    (chosen / "theirs.txt").write_text("not docbot's")
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(chosen))
    assert upload_inbox(settings).folder == chosen.resolve()
    assert (chosen / "theirs.txt").exists()
    os.environ.pop("GRADIO_TEMP_DIR", None)
