"""The indexed documents as the page shows them: listing, safe upload names, who uploaded what, removal, context.

Nothing here knows about Gradio; the page calls these and renders the results.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from bot.answer.citations import Citation
from bot.config import Settings
from bot.state.uploads import UploadStore
from index.loaders import SUPPORTED_SUFFIXES
from index.pipeline import index_lock
from index.protocols import Store
from index.store import StoredChunk

MAX_NAME_CHARS = 100
#: Characters of the document shown on each side of a cited passage.
CONTEXT_CHARS = 1200

_UNSAFE = re.compile(r"[^\w.-]+")


class UploadRefusedError(ValueError):
    """A file the page will not accept; the message says why, in words for the user."""


@dataclass(frozen=True, slots=True)
class IndexedDocument:
    """One indexed file, as listed on the page."""

    root: str  # the folder it was indexed from (never shown: a server path)
    source: str  # its path inside that folder
    title: str
    chunks: int
    pages: int  # PDF pages with text; 0 for other files
    indexed_at: str | None  # ISO time of the last upload, None for files indexed by the CLI
    uploaded: bool
    owner: str | None = None  # who uploaded it (None: login was off, or indexed by the CLI)

    @property
    def key(self) -> str:
        """An opaque, stable handle for the page (no server path leaves the server)."""
        return document_key(self.root, self.source)


def document_key(root: str, source: str) -> str:
    return hashlib.blake2b(f"{root}\x1f{source}".encode(), digest_size=8).hexdigest()


# --- listing -----------------------------------------------------------------------------------


def list_documents(store: Store, settings: Settings, uploads: UploadStore) -> list[IndexedDocument]:
    """Every indexed file with its title and chunk count, sorted by title; who uploaded it and when from the state
    database (the same on every replica)."""
    grouped: dict[tuple[str, str], dict[str, Any]] = {}
    for _, _, meta in store.iter_all(with_text=False):
        key = (str(meta.get("root", "")), str(meta["source"]))
        entry = grouped.setdefault(key, {"title": str(meta.get("title") or key[1]), "chunks": 0, "pages": set()})
        entry["chunks"] += 1
        if int(meta.get("page") or 0):
            entry["pages"].add(int(meta["page"]))
    records = uploads.records(settings.collection)
    here = str(settings.uploads_dir.resolve())
    documents = []
    for (root, source), entry in grouped.items():
        record = records.get(source)
        record = record if record is not None and record.names(root, source) else None
        documents.append(
            IndexedDocument(
                root=root,
                source=source,
                title=entry["title"],
                chunks=entry["chunks"],
                pages=len(entry["pages"]),
                indexed_at=record.indexed_at if record else None,
                uploaded=record is not None or root == here,
                owner=record.owner if record else None,
            )
        )
    return sorted(documents, key=lambda d: (d.title.lower(), d.source))


# --- uploads -----------------------------------------------------------------------------------


def sanitise_filename(name: str) -> str:
    """A safe file name from whatever the browser sent: basename only, plain characters, a supported type.

    Raises :class:`UploadRefusedError` for names that cannot be made safe or types that cannot be indexed.
    """
    base = re.split(r"[\\/]", unicodedata.normalize("NFC", name).replace("\x00", ""))[-1].strip()
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    suffix = "." + suffix.lower() if suffix else ""
    if suffix not in SUPPORTED_SUFFIXES:
        kinds = ", ".join(sorted(SUPPORTED_SUFFIXES))
        raise UploadRefusedError(f"{base or 'the file'}: {suffix or 'no'} file type is not supported ({kinds})")
    stem = _UNSAFE.sub("_", stem)
    stem = re.sub(r"\.{2,}", ".", stem).strip("._-")[: MAX_NAME_CHARS - len(suffix)]
    if not stem:
        raise UploadRefusedError(f"{base}: the file name has no usable characters")
    return stem + suffix


# --- removal -----------------------------------------------------------------------------------


def delete_chunks(store: Store, root: str, source: str) -> int:
    """Delete the chunks of one indexed file (the caller holds the index lock); how many went."""
    ids = [
        chunk_id
        for chunk_id, _, meta in store.iter_all(with_text=False)
        if str(meta["source"]) == source and str(meta.get("root", "")) == root
    ]
    store.delete(ids)
    return len(ids)


def remove_document(store: Store, settings: Settings, document: IndexedDocument, uploads: UploadStore) -> int:
    """Delete the document's chunks, and if it was uploaded its record and original (and this replica's copy of
    the file). Returns how many chunks went.

    The caller refreshes the retriever so that the BM25 side follows.
    """
    record = uploads.get(settings.collection, document.source)
    ours = record is not None and record.names(document.root, document.source)
    with index_lock(settings.data_dir), ExitStack() as stack:
        if ours:  # the record goes when the chunks have gone, or stays with them
            stack.enter_context(uploads.forgetting(settings.collection, document.source))
        removed = delete_chunks(store, document.root, document.source)
    if document.root == str(settings.uploads_dir.resolve()):
        (settings.uploads_dir.resolve() / document.source).unlink(missing_ok=True)
    return removed


# --- surrounding text --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Context:
    """A window of document text around a cited passage; spans are relative to ``text``."""

    text: str
    passage: tuple[int, int]
    quote: tuple[int, int]
    clipped_before: bool
    clipped_after: bool


def stitch(chunks: Iterable[StoredChunk]) -> tuple[int, str]:
    """Rebuild the text a page's overlapping chunks cover: (offset of its first character, text)."""
    ordered = sorted(chunks, key=lambda c: int(c.metadata.get("start", 0)))
    if not ordered:
        return 0, ""
    begin = int(ordered[0].metadata.get("start", 0))
    parts: list[str] = []
    covered = begin
    for chunk in ordered:
        start = int(chunk.metadata.get("start", 0))
        end = start + len(chunk.text)
        if end <= covered:
            continue
        if start > covered:  # whitespace the chunker left between chunks: same length, so offsets hold
            gap = start - covered
            parts.append("\n" * gap if gap > 1 else " ")
            covered = start
        parts.append(chunk.text[covered - start :])
        covered = end
    return begin, "".join(parts)


def _snap(text: str, position: int, forward: bool) -> int:
    """Move a cut to the nearest space so the window does not start or end mid-word."""
    if position <= 0 or position >= len(text):
        return max(0, min(position, len(text)))
    found = text.find(" ", position) if forward else text.rfind(" ", 0, position)
    return position if found == -1 else found + (0 if forward else 1)


def surrounding_text(store: Store, citation: Citation, window: int = CONTEXT_CHARS) -> Context:
    """The cited passage with up to ``window`` characters of its document on each side."""
    root = next((str(c.metadata.get("root", "")) for c in store.get([citation.chunk_id])), None)
    same_page = [
        c
        for c in store.by_source(citation.source)
        if c.page == citation.page and (root is None or str(c.metadata.get("root", "")) == root)
    ]
    begin, full = stitch(same_page)
    passage = (citation.passage_start - begin, citation.passage_end - begin)
    if not full or passage[0] < 0 or full[passage[0] : passage[1]] != citation.passage:
        # The document changed since the answer (or its chunks were removed): show the passage alone.
        full, begin, passage = citation.passage, citation.passage_start, (0, len(citation.passage))
    lo = _snap(full, passage[0] - window, forward=True)
    hi = _snap(full, passage[1] + window, forward=False)
    lo, hi = min(lo, passage[0]), max(hi, passage[1])
    quote_lo = min(max(citation.quote_start - begin, passage[0]), passage[1])
    quote_hi = min(max(citation.quote_end - begin, quote_lo), passage[1])
    return Context(
        text=full[lo:hi],
        passage=(passage[0] - lo, passage[1] - lo),
        quote=(quote_lo - lo, quote_hi - lo),
        clipped_before=lo > 0,
        clipped_after=hi < len(full),
    )
