"""What the evidence viewer shows: the cited document's text (or page) found from a citation's reference.

A reference is what a citation's ``view_url`` carries: the chunk's opaque id and the quote's span in its document
(:func:`bot.answer.citations.view_path`). The chunk's stored metadata says which file (root + source, never from the
URL), which page and which passage; the file is re-read under the parse budget when it is still there unchanged
(:mod:`bot.view.texts`: once per file version, a few at a time), else the document's text is rebuilt from the
passages the index keeps.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from bot.config import Settings
from bot.documents.indexed import stitch
from bot.view.errors import ViewBusy
from bot.view.texts import ViewTexts
from index.errors import LoadError
from index.loaders import content_hash, read_file
from index.store import StoredChunk, VectorStore

_REFERENCE = re.compile(r"[0-9a-f]{32}")
_SPAN = re.compile(r"(\d{1,10})-(\d{1,10})")
REMOVED = "this document was removed from the index after the answer (or the link is not one docbot made)"


class EvidenceError(Exception):
    """A view that cannot be shown: its HTTP status and a one-line reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True, slots=True)
class Evidence:
    """One page (PDF) or the whole text (other formats) of a cited document, with the passage's span in it."""

    chunk_id: str
    source: str
    title: str
    page: int | None
    pages: list[int]  # the document's pages that have passages (PDF); [] for other formats
    text: str  # the document's text, or the part of it the index keeps
    offset: int  # document offset of text[0]
    passage: tuple[int, int] | None  # the cited passage's document offsets; None on another page
    file: Path | None  # the source file, when it is still there unchanged (and reads as indexed)
    notice: str | None  # why the view shows less than the file (moved, changed, unreadable)
    collection: str | None = None  # the collection the view's address named (None: the default one)


def check_reference(reference: str) -> str:
    if not _REFERENCE.fullmatch(reference):
        raise EvidenceError(400, "not a docbot evidence reference: open the link from an answer's citation")
    return reference


def parse_span(text: str | None) -> tuple[int, int] | None:
    """``START-END`` (document character offsets) → the span; None when not given."""
    if text is None or text == "":
        return None
    match = _SPAN.fullmatch(text)
    if not match or int(match.group(1)) >= int(match.group(2)):
        raise EvidenceError(400, f"quote={text[:40]!r} is not START-END character offsets with START < END")
    return int(match.group(1)), int(match.group(2))


def stored_chunk(store: VectorStore, chunk_id: str) -> StoredChunk:
    found = store.get([check_reference(chunk_id)])
    if not found:
        raise EvidenceError(404, REMOVED)
    return found[0]


def _siblings(store: VectorStore, chunk: StoredChunk) -> list[StoredChunk]:
    """The chunks of the same file (same root and source), every page."""
    root = chunk.metadata.get("root", "")
    return [c for c in store.by_source(chunk.source) if c.metadata.get("root", "") == root]


def source_file(chunk: StoredChunk) -> Path | None:
    """The file the chunk was read from, if it is still a regular file inside the folder it was indexed from."""
    root = str(chunk.metadata.get("root", ""))
    if not root:
        return None
    folder = Path(root).resolve()
    path = (folder / chunk.source).resolve()
    if not path.is_relative_to(folder) or not path.is_file():
        return None
    return path


@lru_cache(maxsize=256)
def _hash_of(path: str, mtime_ns: int, size: int, max_bytes: int) -> str:
    """The content hash of one version of a file (its path, modification time and size): read once, not per view."""
    return content_hash(read_file(Path(path), max_bytes))


def unchanged_file(chunk: StoredChunk, settings: Settings) -> tuple[Path | None, str | None]:
    """The chunk's file if it is still there with the bytes that were indexed, else None with why not."""
    path = source_file(chunk)
    if path is None:
        return None, "the file is no longer where it was indexed: showing the text the index keeps"
    try:
        stat = path.stat()
        digest = _hash_of(str(path), stat.st_mtime_ns, stat.st_size, settings.max_file_bytes)
    except (OSError, LoadError) as exc:  # an OSError's text would name the server path: its reason only
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        return None, f"the file cannot be read again ({reason}): showing the text the index keeps"
    if digest != chunk.metadata.get("content_hash"):
        return None, "the file changed since it was indexed: showing the text the index keeps"
    return path, None


def _file_text(path: Path, chunk: StoredChunk, texts: ViewTexts) -> tuple[str | None, str | None]:
    """The page's (or document's) text read again from the file under the parse budget (once per file version:
    :class:`~bot.view.texts.ViewTexts`), or None with why not; 503 when every slot for reading is taken."""
    try:
        read = texts.texts(path, chunk.source, str(chunk.metadata.get("content_hash", "")))
    except LoadError as exc:
        return None, f"the file cannot be read again ({exc}): showing the text the index keeps"
    except ViewBusy as exc:
        raise EvidenceError(503, str(exc)) from exc
    text = next((body for page, body in read if page == chunk.page), None)
    start, end = int(chunk.metadata.get("start", 0)), int(chunk.metadata.get("end", 0))
    if text is None or text[start:end] != chunk.text:
        return None, "the file reads differently than when it was indexed: showing the text the index keeps"
    return text, None


def evidence(
    store: VectorStore,
    settings: Settings,
    chunk_id: str,
    page: int | None = None,
    *,
    drawable: bool,
    texts: ViewTexts,
    original: Callable[[StoredChunk], Path | None] | None = None,
) -> Evidence:
    """The cited document, at ``page`` of a PDF instead of the cited one when given (then no passage is marked).

    ``drawable``: a PDF page will be drawn, so its text is needed only when the file is gone or changed.
    ``original``: a copy of an uploaded original as it was indexed (from the state database), for when the file
    is not on this server's disk as it was indexed (:class:`bot.documents.originals.Originals`).
    ``texts``: the server's file texts read again (kept per version, a few parsed at once).
    """
    cited = stored_chunk(store, chunk_id)
    siblings = _siblings(store, cited)
    pages = sorted({c.page for c in siblings if c.page})
    chunk = cited
    if page is not None and page != cited.page:
        if not pages:
            raise EvidenceError(400, "this document has no pages (only a PDF has): open the link without page=")
        if page not in pages:
            raise EvidenceError(404, f"page {page} of this document has no text in the index (pages: {_listed(pages)})")
        chunk = next(c for c in siblings if c.page == page)
    path, notice = unchanged_file(chunk, settings)
    kept = original(chunk) if path is None and original is not None else None
    if kept is not None:
        path, notice = kept, None
    text = not (drawable and chunk.source.lower().endswith(".pdf"))
    body: str | None = None
    if path is not None and text:
        body, notice = _file_text(path, chunk, texts)
        path = path if body is not None else None
    offset = 0
    if body is None and (text or path is None):
        offset, body = stitch(c for c in siblings if c.page == chunk.page)
    passage = (int(cited.metadata.get("start", 0)), int(cited.metadata.get("end", 0)))
    return Evidence(
        chunk_id=cited.id,
        source=chunk.source,
        title=str(chunk.metadata.get("title", chunk.source)),
        page=chunk.page,
        pages=pages,
        text=body or "",
        offset=offset,
        passage=passage if chunk is cited else None,
        file=path,
        notice=notice,
    )


def _listed(pages: list[int]) -> str:
    return ", ".join(str(p) for p in pages[:20]) + (" …" if len(pages) > 20 else "")
