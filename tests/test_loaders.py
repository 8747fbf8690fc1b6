"""Loaders: every supported format read for real, odd encodings decoded, every bad file a one-line LoadError."""

from __future__ import annotations

import hashlib
import io
import os
import struct
import zipfile
from pathlib import Path

import pytest

from bench.pdfs import text_pdf
from index.errors import LoadError
from index.loaders import DOCX_INFLATE_FACTOR, load_file
from index.types import LoadedFile

LIMIT = 5_000_000


def load(path: Path, max_bytes: int = LIMIT) -> LoadedFile:
    return load_file(path, path.name, max_bytes=max_bytes)


def write_docx(path: Path, title: str | None = None) -> Path:
    import docx

    document = docx.Document()
    if title:
        document.core_properties.title = title
    document.add_heading("Quarterly Harbour Report", level=1)
    document.add_paragraph("The harbour handled forty ships in March.")
    document.add_paragraph("Dredging of the east channel finished early.")
    table = document.add_table(rows=2, cols=2)
    for (row, col), value in {(0, 0): "Berth", (0, 1): "Ships", (1, 0): "North", (1, 1): "12"}.items():
        table.cell(row, col).text = value
    document.save(str(path))
    return path


# --- formats -------------------------------------------------------------------------------------


def test_plain_text(tmp_path: Path) -> None:
    data = b"First paragraph line one\r\nline two.\r\n\r\n\r\n\r\nSecond   paragraph.\t\x07End.\n"
    path = tmp_path / "release-notes_v2.txt"
    path.write_bytes(data)
    loaded = load(path)
    (document,) = loaded.documents
    assert document.text == "First paragraph line one\nline two.\n\nSecond paragraph. End."
    assert document.title == "release notes v2"
    assert document.source == "release-notes_v2.txt"
    assert document.page is None
    assert loaded.content_hash == hashlib.sha256(data).hexdigest()


def test_markdown_title_from_first_heading(tmp_path: Path) -> None:
    path = tmp_path / "guide.md"
    path.write_text("Some preamble.\n#not-a-heading\n\n## Getting Started ##\n\nInstall it.\n\n# Later Heading\n")
    (document,) = load(path).documents
    assert document.title == "Getting Started"
    assert "Install it." in document.text

    plain = tmp_path / "no_heading.md"
    plain.write_text("Just text, no heading.\n")
    assert load(plain).documents[0].title == "no heading"


@pytest.mark.parametrize("suffix", [".html", ".htm"])
def test_html_visible_text_and_title(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"page{suffix}"
    path.write_text(
        """<!doctype html><html><head><title>Tide &amp; Harbour</title>
        <style>body { color: red }</style><script>var tracking = "SECRET-SCRIPT";</script></head>
        <body><nav>Home | About | NAVIGATION</nav><!-- a COMMENT -->
        <h1>High water</h1><p>The tide rises <b>twice</b> a day &lt;usually&gt;.</p>
        <div hidden>HIDDEN-DIV</div><noscript>NOSCRIPT</noscript>
        <ul><li>Spring tides</li><li>Neap tides</li></ul></body></html>""",
        encoding="utf-8",
    )
    (document,) = load(path).documents
    assert document.title == "Tide & Harbour"
    assert document.text == "High water\n\nThe tide rises twice a day <usually>.\n\nSpring tides\n\nNeap tides"


def test_html_title_falls_back_to_heading_then_name(tmp_path: Path) -> None:
    heading = tmp_path / "a.html"
    heading.write_text("<body><h1>Only a heading</h1><p>Body.</p></body>")
    assert load(heading).documents[0].title == "Only a heading"
    bare = tmp_path / "bare_page.html"
    bare.write_text("<p>Body only.</p>")
    assert load(bare).documents[0].title == "bare page"


def test_html_keeps_no_script_text(tmp_path: Path) -> None:
    path = tmp_path / "hostile.html"
    path.write_text(
        '<p>Before</p><script>alert(1)</script><img src=x onerror="alert(2)">'
        "<svg onload=alert(3)><script>alert(4)</script></svg><iframe srcdoc='alert(5)'></iframe>"
        '<a href="javascript:alert(6)">link text</a><p>After</p>'
    )
    text = load(path).documents[0].text
    assert "alert" not in text and "onerror" not in text and "javascript" not in text
    assert text == "Before\n\nlink text\n\nAfter"


def test_deeply_nested_html(tmp_path: Path) -> None:
    path = tmp_path / "deep.html"
    path.write_text("<div>" * 20_000 + "bottom of the well" + "</div>" * 20_000)
    assert load(path).documents[0].text == "bottom of the well"


def test_pdf_one_document_per_page(tmp_path: Path) -> None:
    path = text_pdf(
        tmp_path / "annual_report.pdf",
        [["Page one talks about lighthouses.", "Second line of page one."], ["Page two is about ferries."]],
        title="Annual Report 2024",
    )
    loaded = load(path)
    assert [d.page for d in loaded.documents] == [1, 2]
    assert "lighthouses" in loaded.documents[0].text and "ferries" not in loaded.documents[0].text
    assert "ferries" in loaded.documents[1].text
    assert {d.title for d in loaded.documents} == {"Annual Report 2024"}
    assert loaded.content_hash == hashlib.sha256(path.read_bytes()).hexdigest()


def test_pdf_without_title_and_blank_pages(tmp_path: Path) -> None:
    path = text_pdf(tmp_path / "field-notes.pdf", [["Notes from the first day."], [], ["Notes from day three."]])
    loaded = load(path)
    assert [d.page for d in loaded.documents] == [1, 3]  # the blank page is left out, numbers kept
    assert loaded.documents[0].title == "field notes"


def test_pdf_without_any_text_is_refused(tmp_path: Path) -> None:
    path = text_pdf(tmp_path / "scan.pdf", [[], []])
    with pytest.raises(LoadError, match="no text to index"):
        load(path)


def test_docx_paragraphs_tables_and_title(tmp_path: Path) -> None:
    loaded = load(write_docx(tmp_path / "report.docx"))
    (document,) = loaded.documents
    assert document.title == "Quarterly Harbour Report"
    assert document.text.split("\n\n") == [
        "Quarterly Harbour Report",
        "The harbour handled forty ships in March.",
        "Dredging of the east channel finished early.",
        "Berth | Ships",
        "North | 12",
    ]
    assert document.page is None
    assert load(write_docx(tmp_path / "titled.docx", title="Set In Properties")).documents[0].title == (
        "Set In Properties"
    )


# --- encodings -----------------------------------------------------------------------------------

FRENCH = "Les élèves étudient à l'école française — « naïve » façade, crème brûlée, cœur, 10 €."


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        (FRENCH, "cp1252"),
        ("Grüße aus München, schöne Straße, Käse und Öl für die Brücke. " * 3, "latin-1"),
        ("naïve café", "cp1252"),  # too short for any language evidence
        (FRENCH, "utf-16"),  # with its byte-order mark
        ("Привет, мир. Документ на русском языке.", "utf-16-be-bom"),
        (FRENCH, "utf-8-sig"),
    ],
)
def test_text_in_other_encodings_is_decoded(tmp_path: Path, text: str, encoding: str) -> None:
    data = b"\xfe\xff" + text.encode("utf-16-be") if encoding == "utf-16-be-bom" else text.encode(encoding)
    path = tmp_path / "notes.txt"
    path.write_bytes(data)
    assert load(path).documents[0].text == text.strip()


# --- bad files -----------------------------------------------------------------------------------


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def lying_zip(real_size: int) -> bytes:
    """A zip whose one member declares 100 bytes but inflates to ``real_size``: no header can be trusted."""
    data = bytearray(zip_bytes({"word/document.xml": b"\0" * real_size}))
    local = data.index(b"PK\x03\x04")
    central = data.index(b"PK\x01\x02")
    struct.pack_into("<I", data, local + 22, 100)  # uncompressed size in the local header
    struct.pack_into("<I", data, central + 24, 100)  # ... and in the central directory
    return bytes(data)


def truncated_pdf(tmp_path: Path) -> bytes:
    data = text_pdf(tmp_path / "whole.pdf", [["Some text that will be cut off."] * 30] * 3).read_bytes()
    return data[: len(data) // 3]


BAD_FILES = {
    "empty file": ("empty.txt", lambda tmp: b"", "empty file"),
    "binary named .txt": ("photo.txt", lambda tmp: b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + os.urandom(2000), "binary"),
    "garbage PDF": ("broken.pdf", lambda tmp: b"%PDF-1.7\n" + os.urandom(3000), "PDF"),
    "not a PDF at all": ("plain.pdf", lambda tmp: b"just some words, not a PDF", "PDF"),
    "truncated PDF": ("cut.pdf", truncated_pdf, "PDF"),
    "zero-byte DOCX": ("empty.docx", lambda tmp: b"", "empty file"),
    "DOCX not a zip": ("fake.docx", lambda tmp: b"this is not a zip archive at all", "corrupt DOCX"),
    "zip without Word parts": ("parts.docx", lambda tmp: zip_bytes({"hello.txt": b"hi"}), "corrupt DOCX"),
    "DOCX zip bomb": ("bomb.docx", lambda tmp: zip_bytes({"word/document.xml": b"\0" * 25_000_000}), "zip bomb"),
    "DOCX zip bomb hiding its size": ("liar.docx", lambda tmp: lying_zip(25_000_000), "corrupt DOCX .*CRC"),
    "unsupported type": ("sheet.xlsx", lambda tmp: b"PK...", "unsupported file type .xlsx"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_file_gives_one_line_reason(tmp_path: Path, case: str) -> None:
    name, make, reason = BAD_FILES[case]
    path = tmp_path / name
    path.write_bytes(make(tmp_path))
    # 1 MB limit: the bombs inflate past 20x that
    with pytest.raises(LoadError, match=reason) as caught:
        load(path, max_bytes=1_000_000)
    message = str(caught.value)
    assert message and "\n" not in message and len(message) < 300


def test_zip_bomb_limit_scales_with_max_file_bytes(tmp_path: Path) -> None:
    path = write_docx(tmp_path / "ok.docx")
    inflated = sum(i.file_size for i in zipfile.ZipFile(path).infolist())
    just_enough = inflated // DOCX_INFLATE_FACTOR + 1
    assert load(path, max_bytes=max(just_enough, path.stat().st_size)).documents
    with pytest.raises(LoadError, match="zip bomb"):
        load(path, max_bytes=path.stat().st_size)  # allowed to be read, not to inflate 20x past that limit


def test_file_over_the_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_text("word " * 1000)
    with pytest.raises(LoadError, match="5,000 bytes is over the 4,999-byte limit") as caught:
        load(path, max_bytes=4999)
    assert "max_file_bytes" in str(caught.value)
    assert load(path, max_bytes=5000).documents


def test_unreadable_file(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("running as root: chmod 000 does not stop root reading (the OSError cases below still run)")
    path = tmp_path / "secret.txt"
    path.write_text("classified")
    path.chmod(0)
    try:
        with pytest.raises(LoadError, match=r"cannot read the file \(Permission denied"):
            load(path)
    finally:
        path.chmod(0o600)


def test_directory_named_like_a_file(tmp_path: Path) -> None:
    path = tmp_path / "folder.txt"
    path.mkdir()
    with pytest.raises(LoadError, match=r"cannot read the file \(Is a directory"):
        load(path)


def test_broken_symlink(tmp_path: Path) -> None:
    path = tmp_path / "dangling.md"
    path.symlink_to(tmp_path / "gone.md")
    with pytest.raises(LoadError, match=r"cannot read the file \(No such file or directory"):
        load(path)
