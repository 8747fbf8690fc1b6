"""Issue 27, finding 5, in-process: the viewer reads a document again once per version, within a byte budget, and
at most ``max_view_parses`` documents at once (one more is refused at once, never queued).

A fake parse counts its calls (and can be held mid-parse), so these need no worker process.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from bot.view.errors import ViewBusy
from bot.view.texts import ENTRY_BYTES, ViewTexts
from index.errors import LoadError
from index.types import Document, LoadedFile

HASH = "a" * 64


class CountingParse:
    """A parse that reads the file's text as one document, counting calls; ``hold`` keeps it mid-parse."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.hold = threading.Event()
        self.hold.set()
        self.started = threading.Event()

    def __call__(self, path: Path, source: str) -> LoadedFile:
        self.calls.append(source)
        self.started.set()
        assert self.hold.wait(10)
        text = path.read_text()
        if text.startswith("broken"):
            raise LoadError("took longer than 1 s to read (raise parse_timeout_s)")
        return LoadedFile(source=source, content_hash=HASH, documents=[Document(text, source, source)])


def texts_with(parse: CountingParse, *, cache_bytes: int = 10_000_000, parses: int = 2) -> ViewTexts:
    return ViewTexts(parse, cache_bytes=cache_bytes, parses=parses, wait_s=10)


def test_the_same_version_is_parsed_once(tmp_path: Path) -> None:
    parse = CountingParse()
    texts = texts_with(parse)
    (tmp_path / "a.html").write_text("The keeper counted quokkas.")
    first = texts.texts(tmp_path / "a.html", "a.html", HASH)
    for _ in range(5):
        assert texts.texts(tmp_path / "a.html", "a.html", HASH) == first
    assert first == ((None, "The keeper counted quokkas."),)
    assert parse.calls == ["a.html"]


def test_a_new_version_is_parsed_again_never_shown_stale(tmp_path: Path) -> None:
    parse = CountingParse()
    texts = texts_with(parse)
    file = tmp_path / "a.html"
    file.write_text("The first version.")
    assert texts.texts(file, "a.html", HASH) == ((None, "The first version."),)
    file.write_text("The second version, longer.")  # replaced on disk: another size and modification time
    assert texts.texts(file, "a.html", HASH) == ((None, "The second version, longer."),)
    assert texts.texts(file, "a.html", "b" * 64) == ((None, "The second version, longer."),)  # re-indexed
    assert len(parse.calls) == 3


def test_the_kept_texts_stay_within_their_byte_budget(tmp_path: Path) -> None:
    parse = CountingParse()
    budget = 200_000
    texts = texts_with(parse, cache_bytes=budget)
    for n in range(100):
        (tmp_path / f"{n}.txt").write_text(f"document {n} " + "x" * 10_000)
        texts.texts(tmp_path / f"{n}.txt", f"{n}.txt", HASH)
        assert texts.held <= budget
    assert texts.held > budget - 2 * (10_100 + ENTRY_BYTES)  # full, not emptied
    texts.texts(tmp_path / "99.txt", "99.txt", HASH)  # the most recent is kept
    texts.texts(tmp_path / "0.txt", "0.txt", HASH)  # the oldest went
    assert parse.calls.count("99.txt") == 1 and parse.calls.count("0.txt") == 2


def test_a_failure_is_remembered_not_parsed_on_every_view(tmp_path: Path) -> None:
    parse = CountingParse()
    texts = texts_with(parse)
    (tmp_path / "b.html").write_text("broken")
    for _ in range(3):
        with pytest.raises(LoadError, match="took longer than 1 s"):
            texts.texts(tmp_path / "b.html", "b.html", HASH)
    assert parse.calls == ["b.html"]


def test_beyond_the_cap_a_view_is_refused_at_once_and_the_same_document_waits_for_its_parse(tmp_path: Path) -> None:
    parse = CountingParse()
    texts = texts_with(parse, parses=1)
    for name in ("a.txt", "b.txt"):
        (tmp_path / name).write_text(f"text of {name}")
    parse.hold.clear()
    results: list[object] = []
    threads = [
        threading.Thread(target=lambda: results.append(texts.texts(tmp_path / "a.txt", "a.txt", HASH)))
        for _ in range(3)
    ]
    threads[0].start()
    assert parse.started.wait(5)  # the one slot is taken
    for thread in threads[1:]:
        thread.start()  # the same version: they wait for that parse
    started = time.monotonic()
    with pytest.raises(ViewBusy, match="try again in a few seconds"):
        texts.texts(tmp_path / "b.txt", "b.txt", HASH)
    assert time.monotonic() - started < 0.5  # refused at once, not queued
    parse.hold.set()
    for thread in threads:
        thread.join(5)
    assert results == [((None, "text of a.txt"),)] * 3
    assert parse.calls == ["a.txt"]  # one parse for the three views
    assert texts.texts(tmp_path / "b.txt", "b.txt", HASH) == ((None, "text of b.txt"),)  # the slot is free again
