"""Hostile uploads, through the chat page's own path: Gradio's upload route, then the page's upload handler.

Names that climb out of folders, wrong types, oversized (refused by Gradio's upload route) and empty files, DOCX
zip bombs, PDFs that take too long to parse, binary files named .txt: each is refused or skipped with its reason,
the rest is indexed, and nothing is written outside the data directory (Gradio's upload cache included).
"""

from __future__ import annotations

import html
import re
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import pytest
from conftest import SEEDS
from helpers import access_over
from sqlalchemy import text
from test_loaders import lying_zip, zip_bytes

from app import build
from bench.pdfs import raw_pdf
from bot.answer.chat import Bot
from bot.config import Settings
from bot.state.uploads import uploads
from bot.web.page import ChatPage
from index.embeddings import Embedder

MAX_UPLOAD = 200_000
HARBOUR = b"The harbour master of Port Quill rings the fog bell every ninety seconds in thick weather."
TRAVERSALS = [
    "../../../../evil.txt",
    "..\\..\\..\\evil.txt",
    "/etc/cron.d/evil.txt",
    "docs/../../../evil.txt",
    "....//....//evil.txt",
    "%2e%2e%2f%2e%2e%2fevil.txt",
    "~/.ssh/evil.txt",
]


def slow_pdf(operators: int = 400_000) -> bytes:
    """A 21 kB PDF of one page whose text takes pypdf tens of seconds to read (a compressed, repetitive stream)."""
    content = zlib.compress(b"BT /F1 12 Tf 72 720 Td " + b"(harbour ) Tj 1 0 Td " * operators + b"ET")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    return raw_pdf(objects, "1.4")


class Progress:
    """Stands in for ``gr.Progress``: the handler only calls it."""

    def __call__(self, *args: object, **kwargs: object) -> None:
        pass


#: The page's handlers called in-process carry no credentials: they act with the anonymous role (admin below).
IN_PROCESS = gr.Request()


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data_dir = tmp_path_factory.mktemp("uploads") / "data"
    return Settings(
        data_dir=data_dir,
        max_upload_bytes=MAX_UPLOAD,
        max_file_bytes=1_000_000,
        parse_timeout_s=1.0,
        anonymous_role="admin",
    )


@pytest.fixture(scope="module")
def gradio(settings: Settings, hashing_embedder: Embedder) -> Iterator[Any]:
    """The whole app in-process, as ``docbot serve`` builds it (no operator's GRADIO_TEMP_DIR)."""
    from fastapi.testclient import TestClient

    from app import create_app

    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("GRADIO_TEMP_DIR", raising=False)
        with TestClient(create_app(build(settings, embedder=hashing_embedder)), base_url="http://127.0.0.1") as client:
            yield client


@pytest.fixture(scope="module")
def page(settings: Settings, hashing_embedder: Embedder, gradio: Any) -> ChatPage:
    """The page's handlers over the seeds, taking the files that arrive through ``gradio``'s upload route."""
    services = build(settings, embedder=hashing_embedder)
    services.indexer.run([SEEDS])
    inbox, access = gradio.app.state.upload_inbox, access_over(settings, services.database)
    bot = Bot(settings, services.retriever, None)
    return ChatPage(bot, settings, services.indexer, inbox, access, services.state)


def upload(gradio: Any, name: str, content: bytes) -> Any:
    return gradio.post("/gradio_api/upload", files=[("files", (name, content, "application/octet-stream"))])


def report_lines(report: str) -> list[str]:
    return [html.unescape(re.sub(r"<[^>]+>", "", item)) for item in re.findall(r"<li[^>]*>(.*?)</li>", report)]


def outside_targets(cwd: Path) -> list[Path]:
    """Where the traversal names would land if any step honoured them."""
    roots = [Path("/"), Path("/etc/cron.d"), Path(tempfile.gettempdir()), cwd, Path.home() / ".ssh"]
    return [root / name for root in roots for name in ("evil.txt", "....evil.txt")]


def test_traversal_names_stay_inside_the_data_directory(gradio: Any, page: ChatPage, settings: Settings) -> None:
    data_dir = settings.data_dir.resolve()
    cached: list[str] = []
    for name in TRAVERSALS:
        response = upload(gradio, name, HARBOUR)
        assert response.status_code == 200, (name, response.text)
        (path,) = response.json()
        assert Path(path).resolve().is_relative_to(data_dir / "gradio"), (name, path)
        cached.append(path)

    lines = report_lines(page.upload(cached, Progress(), IN_PROCESS))
    assert any(line.startswith("Added: ") for line in lines), lines
    saved = sorted(p.name for p in settings.uploads_dir.iterdir())
    assert saved and all(re.fullmatch(r"[\w.-]+\.txt", name) and ".." not in name for name in saved), saved
    assert all(p.resolve().parent == settings.uploads_dir.resolve() for p in settings.uploads_dir.iterdir())
    assert not [target for target in outside_targets(Path.cwd()) if target.exists()]
    assert "ninety seconds" in page.bot.ask("How often does the harbour master of Port Quill ring the fog bell?").text


HOSTILE: dict[str, tuple[bytes | Any, str]] = {
    "notes.exe": (b"MZ\x90\x00 not a document", "Refused: notes.exe: .exe file type is not supported"),
    "README": (b"no extension at all", "Refused: README: no file type is not supported"),
    "empty.txt": (b"", "Refused: empty.txt: the file is empty"),
    "bomb.docx": (
        lambda: zip_bytes({"word/document.xml": b"\0" * 25_000_000}),
        "Failed: bomb.docx: DOCX would inflate",
    ),
    "liar.docx": (lambda: lying_zip(25_000_000), "Failed: liar.docx: corrupt DOCX"),
    "slow.pdf": (slow_pdf, "Failed: slow.pdf: took longer than 1 s to read (raise parse_timeout_s)"),
    "binary.txt": (bytes(range(256)) * 40, "Failed: binary.txt: binary data, not text"),
    "<img src=x onerror=alert(1)>.md": (
        b"# Quay rules\n\nBicycles are walked on the quay.",
        "Added: img_src_x_onerror_alert_1.md",
    ),
}


def test_hostile_files_are_refused_or_skipped_with_their_reason(
    gradio: Any, page: ChatPage, settings: Settings
) -> None:
    paths = []
    for name, (content, _) in HOSTILE.items():
        response = upload(gradio, name, content() if callable(content) else content)
        assert response.status_code == 200, (name, response.text)
        paths += response.json()
    huge = upload(gradio, "huge.txt", b"harbour " * (MAX_UPLOAD // 8 + 1))
    assert huge.status_code == 413, "Gradio's upload route let a file over max_upload_bytes into its cache"
    before = {p.name for p in settings.uploads_dir.iterdir()} if settings.uploads_dir.exists() else set()

    lines = report_lines(page.upload(paths, Progress(), IN_PROCESS))

    for name, (_, reason) in HOSTILE.items():
        assert any(line.startswith(reason) for line in lines), (name, reason, "\n".join(lines))
    assert all("\n" not in line and len(line) < 300 for line in lines)
    kept = {p.name for p in settings.uploads_dir.iterdir()} - before
    assert kept == {"img_src_x_onerror_alert_1.md"}, "a refused or unreadable file was kept"
    assert page.bot.retriever.search("bicycles walked on the quay").passages[0].source == "img_src_x_onerror_alert_1.md"


def test_an_upload_while_the_state_database_fails_is_refused_and_keeps_nothing(
    gradio: Any, page: ChatPage, settings: Settings
) -> None:
    """Who uploaded what is kept in the database for every replica: when it cannot be read, the upload is refused
    with a one-line note before anything is staged or indexed."""
    before = {p.name for p in settings.uploads_dir.iterdir()} if settings.uploads_dir.exists() else set()
    (path,) = upload(gradio, "tide-table.txt", b"The spring tide at Port Quill peaks at 5.2 metres.").json()
    engine = page.uploads.database.engine
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE uploads"))  # the database fails the way a lost table makes it fail
    try:
        report = page.upload([path], Progress(), IN_PROCESS)
    finally:
        uploads.create(engine)
    assert "The files were not added: the state database" in html.unescape(report), report
    assert "Nothing indexed before is lost" in report and report.count("<p") == 1
    assert {p.name for p in settings.uploads_dir.iterdir()} == before, "a file was kept"
    assert not Path(path).exists(), "Gradio's cached copy stayed"
    assert not page.store.by_source("tide-table.txt"), "it was indexed"
