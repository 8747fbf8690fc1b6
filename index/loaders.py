"""File → Document(s): plain text, Markdown, HTML (visible text only), PDF (one document per page), DOCX.

Every bad file raises :class:`LoadError` with a one-line reason; nothing here chunks or embeds.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import re
import zipfile
import zlib
from pathlib import Path
from typing import Any

from index.errors import LoadError
from index.text_clean import CleanPage, clean_pdf_pages, fold_chars, tidy_text
from index.types import Document, LoadedFile

TEXT_SUFFIXES = frozenset({".txt", ".md", ".markdown"})
HTML_SUFFIXES = frozenset({".html", ".htm"})
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | {".pdf", ".docx"}

#: A DOCX is a zip: refuse one whose members would inflate past this many times the size limit.
DOCX_INFLATE_FACTOR = 20
#: A DOCX without a title property takes its first heading, searched for in this many paragraphs.
DOCX_TITLE_PARAGRAPHS = 200

_HTML_DROP = "script, style, nav, noscript, template, svg, iframe, object, head, form, button, select, [hidden]"
_HTML_BLOCKS = frozenset(
    (
        "address article aside blockquote br dd div dl dt figcaption figure footer h1 h2 h3 h4 h5 h6 "
        "header hr li main ol p pre section table td th tr ul"
    ).split()
)
#: An ATX heading line; its closing ``#``s are taken off in Python. (Matching them in the pattern, as
#: ``(.+?)[ \t]*#*[ \t]*$`` did, backtracks quadratically on a long line of ``#``s: 12 s for 40 KB.)
_MD_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.*)$", re.MULTILINE)


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def title_from_name(path: Path) -> str:
    return re.sub(r"[-_]+", " ", path.stem).strip() or path.name


def normalise_text(text: str) -> str:
    """Ligatures spelt out, odd spaces plain, invisible marks gone (:func:`index.text_clean.fold_chars`), one newline
    convention, no control characters, tidy blank lines: offsets refer to this text."""
    return tidy_text(fold_chars(text))


def decode_text(data: bytes) -> str:
    """Bytes of unknown encoding → str. Binary data raises :class:`LoadError`."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    has_utf16_bom = data[:2] in (b"\xff\xfe", b"\xfe\xff")
    if b"\x00" in data[:8192] and not has_utf16_bom:
        raise LoadError("binary data, not text (holds NUL bytes)")
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        raise LoadError("binary data or an unknown text encoding")
    text = str(best)
    if best.coherence == 0 and len(text) == len(data):
        # A short text in some single-byte code page: no language evidence to tell which one, so take
        # the likeliest, Windows-1252 (as browsers do), when the bytes fit it.
        with contextlib.suppress(UnicodeDecodeError):
            text = data.decode("cp1252")
    controls = sum(1 for ch in text[:8192] if ch < " " and ch not in "\n\r\t\f")
    if controls > 0.05 * min(len(text), 8192):
        raise LoadError("binary data, not text (too many control characters)")
    return text


def _load_text(path: Path, data: bytes, source: str) -> list[Document]:
    text = normalise_text(decode_text(data))
    title = title_from_name(path)
    if path.suffix.lower() in {".md", ".markdown"}:
        title = markdown_title(text) or title
    return [Document(text=text, source=source, title=title)]


def markdown_title(text: str) -> str | None:
    """The text of the first ATX heading (``# Title #``) that has any, in time linear in ``text``."""
    for match in _MD_HEADING.finditer(text):
        line = match.group(1).rstrip(" \t")
        bare = line.rstrip("#")
        if bare != line and (not bare or bare[-1] in " \t"):  # a closing sequence follows a space (CommonMark)
            line = bare
        if line.strip():
            return line.strip()
    return None


def html_to_text(html: str) -> tuple[str, str | None]:
    """Visible text of an HTML page (block elements become paragraphs) and its title, if any."""
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(html)
    title_node = tree.css_first("title")
    title = title_node.text(strip=True) if title_node else None
    if not title:
        h1 = tree.css_first("h1")
        title = h1.text(strip=True) if h1 else None
    for node in tree.css(_HTML_DROP):
        node.decompose()
    root = tree.body or tree.root
    parts: list[str] = []
    if root is not None:
        # An explicit stack, not recursion: hostile pages nest thousands of levels deep.
        stack = [root]
        while stack:
            node = stack.pop()
            if isinstance(node, str):
                parts.append(node)
                continue
            if node.tag == "-text":
                parts.append(node.text_content or "")
                continue
            block = node.tag in _HTML_BLOCKS
            children = list(node.iter(include_text=True))
            if block:
                stack.append("\n\n")
            stack.extend(reversed(children))
            if block:
                stack.append("\n\n")
    return "".join(parts), title or None


def _load_html(path: Path, data: bytes, source: str) -> list[Document]:
    text, title = html_to_text(decode_text(data))
    return [Document(text=normalise_text(text), source=source, title=title or title_from_name(path))]


def open_pdf(data: bytes) -> Any:
    """A ``pypdf.PdfReader`` of the bytes, decrypted when it opens without a password."""
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted and not reader.decrypt(""):
        raise LoadError("the PDF is password-protected")
    return reader


#: The version of the text the loaders make of a file's bytes, stored beside every chunk: the index reads again a file
#: whose chunks have another (2: PDF text cleaned, every loader's characters folded; see index/text_clean.py).
TEXT_VERSION = 2


def pdf_extracted_text(page: Any) -> str:
    """pypdf's text of one PDF page, tidied: the original that :class:`~index.text_clean.CleanPage` maps back to
    (the evidence viewer aligns it with pdfium's characters)."""
    return tidy_text(page.extract_text() or "")


def pdf_pages(reader: Any) -> list[CleanPage]:
    """docbot's text of every page of a PDF (a ``pypdf`` reader): what every offset into a page's Document refers
    to, with its map back to the extracted text."""
    return clean_pdf_pages([pdf_extracted_text(page) for page in reader.pages])


def _load_pdf(path: Path, data: bytes, source: str) -> list[Document]:
    try:
        reader = open_pdf(data)
        meta_title = (reader.metadata.title if reader.metadata else None) or ""
        documents = []
        for number, page in enumerate(pdf_pages(reader), start=1):
            if page.text:
                documents.append(Document(text=page.text, source=source, title="", page=number))
    except LoadError:
        raise
    except RecursionError as exc:
        raise LoadError("corrupt PDF (nested too deeply)") from exc
    except Exception as exc:  # pypdf surfaces damaged files as errors of many kinds (zlib, struct, index ...)
        raise LoadError(f"corrupt or unreadable PDF ({one_line(exc)})") from exc
    title = meta_title.strip()
    if title.lower() in ("", "untitled"):  # "untitled": what many PDF writers record when given no title
        title = title_from_name(path)
    return [Document(text=d.text, source=d.source, title=title, page=d.page) for d in documents]


def one_line(exc: Exception) -> str:
    """An exception as one short line: its type and message."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"


def check_zip(data: bytes, limit: int) -> None:
    """Refuse a zip bomb before python-docx inflates it, trusting no size the headers declare."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
            declared = sum(info.file_size for info in members)
            if declared > limit:
                raise LoadError(f"DOCX would inflate to {declared:,} bytes: refused as a zip bomb")
            for info in members:  # inflate in bounded steps: a member holding more than it declares fails its CRC
                probe = copy.copy(info)
                probe.file_size += 1
                with archive.open(probe) as member:
                    while member.read(1 << 20):
                        pass
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError, zlib.error) as exc:
        raise LoadError(f"corrupt DOCX ({one_line(exc)})") from exc


def _load_docx(path: Path, data: bytes, source: str, max_bytes: int) -> list[Document]:
    check_zip(data, DOCX_INFLATE_FACTOR * max_bytes)
    import docx

    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:  # python-docx surfaces lxml, zip and package errors of many kinds
        raise LoadError(f"corrupt DOCX ({one_line(exc)})") from exc
    body = document.paragraphs
    paragraphs = [p.text for p in body]
    for table in document.tables:
        for row in table.rows:
            paragraphs.append(" | ".join(cell.text for cell in row.cells))
    title = (document.core_properties.title or "").strip()
    if not title:
        title = _docx_heading(body[:DOCX_TITLE_PARAGRAPHS], paragraphs) or title_from_name(path)
    return [Document(text=normalise_text("\n\n".join(paragraphs)), source=source, title=title)]


def _docx_heading(body: list[Any], texts: list[str]) -> str:
    """The first heading or title paragraph with text. Empty paragraphs cost nothing, and each style is looked up
    once (python-docx searches the styles part on every ``paragraph.style``: 24 s for 20,000 paragraphs)."""
    names: dict[str | None, str] = {}
    for paragraph, text in zip(body, texts, strict=False):
        if not text.strip():
            continue
        style_id = paragraph._p.style  # the paragraph's style id, read from its own XML
        if style_id not in names:
            style = paragraph.style
            names[style_id] = (style.name or "") if style is not None else ""
        if names[style_id].startswith(("Heading", "Title")):
            return text.strip()
    return ""


def read_file(path: Path, max_bytes: int) -> bytes:
    """The bytes of a file, refusing what is too big, empty or unreadable before reading it all."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise LoadError(f"{size:,} bytes is over the {max_bytes:,}-byte limit (setting max_file_bytes)")
        if size == 0:
            raise LoadError("empty file")
        return path.read_bytes()
    except OSError as exc:
        raise LoadError(f"cannot read the file ({exc.strerror or exc})") from exc


def check_supported(path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise LoadError(
            f"unsupported file type {suffix or '(none)'}; supported: {', '.join(sorted(SUPPORTED_SUFFIXES))}"
        )


def parse_file(path: Path, data: bytes, source: str, *, max_bytes: int) -> LoadedFile:
    """Bytes already read from ``path`` → documents. Raises :class:`LoadError` with a one-line reason.

    No time or memory limit of its own: indexing calls it in a worker process under a budget
    (:mod:`index.parse_pool`).
    """
    check_supported(path)
    suffix = path.suffix.lower()
    if suffix in HTML_SUFFIXES:
        documents = _load_html(path, data, source)
    elif suffix in TEXT_SUFFIXES:
        documents = _load_text(path, data, source)
    elif suffix == ".pdf":
        documents = _load_pdf(path, data, source)
    else:
        documents = _load_docx(path, data, source, max_bytes)
    documents = [d for d in documents if d.text.strip()]
    if not documents:
        raise LoadError("no text to index (empty, or a scanned document without a text layer)")
    return LoadedFile(source=source, content_hash=content_hash(data), documents=documents)


def load_file(path: Path, source: str, *, max_bytes: int) -> LoadedFile:
    """Read and parse one file in this process. Raises :class:`LoadError` (one-line reason) for anything not
    indexable."""
    check_supported(path)
    data = read_file(path, max_bytes)
    return parse_file(path, data, source, max_bytes=max_bytes)


def preload_parsers() -> None:
    """Import every parser's library now (a parsing worker does, before its first file)."""
    import charset_normalizer  # noqa: F401
    import docx  # noqa: F401
    import pypdf  # noqa: F401
    import selectolax.lexbor  # noqa: F401
