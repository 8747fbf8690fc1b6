"""Parsing in a worker process under a time and a memory budget (index/parse_pool.py).

A file over either budget fails with a one-line reason saying which setting to raise; the worker is killed and
replaced and the next file is read as usual; the worker never imports torch or the bot; indexing (the CLI and the
page's uploads both run the Indexer) goes through it.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import pools

from bot.config import Settings
from index.embeddings import Embedder
from index.errors import LoadError
from index.parse_pool import ParseBudget, ParsePool
from index.pipeline import Indexer
from index.store import VectorStore
from index.worker_loop import NICENESS

MAX_BYTES = 50 * 1024 * 1024
ROOMY = ParseBudget(timeout_s=60, memory_mb=1024)
_W = b'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'


def docx_of(body: bytes) -> bytes:
    """A minimal DOCX (package parts and a document.xml with ``body``), compressed."""
    types = (
        b'<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        b'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        b'<Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" '
        b'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'
    )
    rels = (
        b'<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        b'<Relationship Id="rId1" Target="word/document.xml" '
        b'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"/></Relationships>'
    )
    document = b'<?xml version="1.0"?><w:document ' + _W + b"><w:body>" + body + b"</w:body></w:document>"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", types)
        archive.writestr("_rels/.rels", rels)
        archive.writestr("word/document.xml", document)
    return buffer.getvalue()


def endless_docx(paragraphs: int = 300_000) -> bytes:
    """About 30 kB that python-docx needs tens of seconds to read: a few hundred thousand short paragraphs."""
    return docx_of(b"<w:p><w:r><w:t>harbour</w:t></w:r></w:p>" * paragraphs)


def empty_paragraphs_docx(paragraphs: int = 20_000, styled: bool = True) -> bytes:
    """Finding 3: Word's own template (python-docx's, with its styles) holding 20,000 empty paragraphs, each naming
    a style (``styled``; else bare ``<w:p/>``), then one line of text: 24 s to read before the fix."""
    import docx

    template = io.BytesIO()
    docx.Document().save(template)
    with zipfile.ZipFile(template) as source:
        parts = {info.filename: source.read(info) for info in source.infolist()}
    empty = (b'<w:p><w:pPr><w:pStyle w:val="BodyText"/></w:pPr></w:p>' if styled else b"<w:p/>") * paragraphs
    line = b"<w:p><w:r><w:t>The fog bell rings every ninety seconds.</w:t></w:r></w:p>"
    body = parts["word/document.xml"]
    at = body.index(b"<w:sectPr")
    parts["word/document.xml"] = body[:at] + empty + line + body[at:]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture
def pool() -> Iterator[ParsePool]:
    pool = ParsePool()
    yield pool
    pool.close()


def live_children() -> set[int]:
    """Processes this one started that are still running (not zombies): with ``others`` taken away, the workers of
    the pool under test."""
    children = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            state, ppid = stat.rsplit(")", 1)[1].split()[:2]
            if int(ppid) == os.getpid() and state != "Z":
                children.add(int(entry.name))
    return children


def parse(pool: ParsePool, name: str, data: bytes, budget: ParseBudget = ROOMY) -> str:
    """The text of a file read by ``pool``."""
    return pool.parse(Path(name), data, name, max_bytes=MAX_BYTES, budget=budget).documents[0].text


def test_a_file_over_the_time_budget_fails_in_one_line_and_its_worker_is_killed(pool: ParsePool) -> None:
    others = live_children()
    assert parse(pool, "warm.md", b"# Warm\n\nup.") == "# Warm\n\nup."
    (first,) = live_children() - others

    with pytest.raises(LoadError) as caught:
        parse(pool, "endless.docx", endless_docx(), ParseBudget(timeout_s=1, memory_mb=1024))

    assert str(caught.value) == "took longer than 1 s to read (raise parse_timeout_s)"
    assert first not in live_children(), "the worker stuck in the file still runs"
    assert parse(pool, "next.txt", b"The next file is read as usual.") == "The next file is read as usual."


def test_a_file_over_the_memory_budget_fails_in_one_line(pool: ParsePool) -> None:
    greedy = docx_of(b"<w:p><w:r><w:t>harbour</w:t></w:r></w:p>" * 1_000_000)  # 120 kB; a DOM of gigabytes

    with pytest.raises(LoadError) as caught:
        parse(pool, "greedy.docx", greedy, ParseBudget(timeout_s=120, memory_mb=300))

    assert str(caught.value) == "needed more than 300 MB to read (raise parse_memory_mb)"
    assert parse(pool, "next.txt", b"Still reading.", ParseBudget(timeout_s=120, memory_mb=300)) == "Still reading."


def test_a_budget_too_small_for_the_parsers_says_so(pool: ParsePool) -> None:
    with pytest.raises(LoadError) as caught:
        parse(pool, "any.txt", b"text", ParseBudget(timeout_s=60, memory_mb=16))
    assert "parse_memory_mb (16 MB) is too small to start a reader" in str(caught.value)


def test_a_worker_that_died_while_idle_is_replaced(pool: ParsePool) -> None:
    others = live_children()
    parse(pool, "one.txt", b"One.")
    (worker,) = live_children() - others
    os.kill(worker, signal.SIGKILL)
    while worker in live_children():
        time.sleep(0.05)
    assert parse(pool, "two.txt", b"Two.") == "Two."


def test_a_worker_yields_the_cpu_to_the_server(pool: ParsePool) -> None:
    """A hostile file's worker runs at a lower priority than the process answering questions."""
    others = live_children()
    parse(pool, "one.txt", b"One.")
    (worker,) = live_children() - others
    assert os.getpriority(os.PRIO_PROCESS, worker) == min(19, os.getpriority(os.PRIO_PROCESS, 0) + NICENESS)


def test_one_worker_reads_file_after_file(pool: ParsePool) -> None:
    others = live_children()
    texts = [parse(pool, f"f{i}.txt", f"File number {i}.".encode()) for i in range(50)]
    assert texts == [f"File number {i}." for i in range(50)]
    assert len(live_children() - others) == 1


def test_twenty_thousand_empty_paragraphs_cost_a_bounded_number_of_style_lookups(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Finding 3 (24 s before): python-docx searches the whole styles part on every ``paragraph.style``; the title
    search looked up the style of each of 20,000 paragraphs. Counted, not timed: each style is looked up once."""
    from docx.text.paragraph import Paragraph

    from index.loaders import parse_file

    lookups = 0
    style = Paragraph.style

    def counted(paragraph: Paragraph) -> object:
        nonlocal lookups
        lookups += 1
        return style.fget(paragraph)  # type: ignore[attr-defined]

    monkeypatch.setattr(Paragraph, "style", property(counted))
    for styled in (True, False):
        lookups = 0
        loaded = parse_file(Path("empty.docx"), empty_paragraphs_docx(styled=styled), "empty.docx", max_bytes=MAX_BYTES)
        assert loaded.documents[0].text == "The fog bell rings every ninety seconds."
        assert lookups <= 2, (styled, lookups)


def test_the_worker_imports_no_torch_and_no_bot() -> None:
    code = (
        "import sys, index.parse_worker, index.loaders; index.loaders.preload_parsers(); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'bot', 'sentence_transformers', "
        "'chromadb', 'gradio', 'transformers', 'numpy'}))"
    )
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert out.stdout.strip() == "[]"


def test_pdf_timeout_is_still_read_as_the_parse_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCBOT_PDF_TIMEOUT_S", "7")
    assert Settings().parse_timeout_s == 7
    monkeypatch.setenv("DOCBOT_PARSE_TIMEOUT_S", "3")
    monkeypatch.setenv("DOCBOT_PARSE_MEMORY_MB", "512")
    assert (Settings().parse_timeout_s, Settings().parse_memory_mb) == (3, 512)
    assert Settings(parse_timeout_s=2).parse_timeout_s == 2


def test_indexing_skips_a_file_over_budget_and_indexes_the_rest(tmp_path: Path, hashing_embedder: Embedder) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "endless.docx").write_bytes(endless_docx())
    (docs / "harbour.txt").write_text("The harbour master rings the fog bell every ninety seconds.")
    settings = Settings(data_dir=tmp_path / "data", parse_timeout_s=1)

    report = Indexer(
        settings,
        hashing_embedder,
        VectorStore(settings, hashing_embedder.name, hashing_embedder.dimension),
        pools().parse,
    ).run([docs])

    assert report.added == ["harbour.txt"]
    assert report.failed == [("endless.docx", "took longer than 1 s to read (raise parse_timeout_s)")]
