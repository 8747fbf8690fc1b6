"""Citations and the answer: the types every front end (CLI, page, API, eval) renders, and the numbering of the
citations while an answer is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any
from urllib.parse import quote as url_quote

from bot.answer.support import Support
from index.types import Passage


@dataclass(frozen=True, slots=True)
class Citation:
    number: int
    chunk_id: str
    source: str
    title: str
    page: int | None
    passage: str
    passage_start: int  # the passage's span in the document text
    passage_end: int
    quote: str  # the passage sentence that supports the claim
    quote_start: int  # its span in the document text
    quote_end: int
    support: float  # 0..1, how well the quote supports the claim
    supported: bool
    view_url: str  # the evidence viewer at the quote (see view_path), relative to the server's address
    collection: str = ""  # the collection the passage comes from


@dataclass(frozen=True, slots=True)
class Related:
    """A passage near the question offered when the documents do not give the answer: not cited, not the answer."""

    chunk_id: str
    source: str
    title: str
    page: int | None
    passage: str
    view_url: str  # the evidence viewer at the passage, relative to the server's address
    collection: str = ""

    @classmethod
    def of(cls, passage: Passage) -> Related:
        where = view_path(passage.id, passage.start, passage.end, passage.collection)
        return cls(passage.id, passage.source, passage.title, passage.page, passage.text, where, passage.collection)


def view_path(chunk_id: str, quote_start: int, quote_end: int, collection: str = "") -> str:
    """The evidence viewer's address for a quote: the chunk's opaque id, the quote's span in its document (never
    a file path) and the collection it comes from (none: the default collection); ``#cited`` scrolls the view to
    the highlighted sentence."""
    where = f"&collection={url_quote(collection, safe='')}" if collection else ""
    return f"/view/{chunk_id}?quote={quote_start}-{quote_end}{where}#cited"


def citation_from_record(record: Mapping[str, Any]) -> Citation:
    """A citation stored earlier (a conversation turn): keys this version does not know are dropped and the viewer
    address is derived again, so a turn saved by an older or newer docbot still opens."""
    known = {item.name for item in fields(Citation)}
    values = {key: value for key, value in record.items() if key in known}
    values["view_url"] = view_path(
        values["chunk_id"], values["quote_start"], values["quote_end"], values.get("collection", "")
    )
    return Citation(**values)


@dataclass
class Answer:
    question: str
    text: str
    citations: list[Citation] = field(default_factory=list)
    refused: bool = False
    generator: str = "extractive"
    query: str = ""  # the standalone query actually searched
    notice: str | None = None  # e.g. "the model failed; answered extractively"
    unsupported: list[str] = field(default_factory=list)  # sentences the grounding guard dropped or flagged
    #: When the documents are on the question's subject but give no answer: the closest passages, for reading.
    related: list[Related] = field(default_factory=list)
    #: Why the question was answered or declined, in one line (``docbot ask --explain``, the eval report).
    why: str = ""
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def sources_block(self) -> str:
        """The numbered sources as plain text, for terminals and OpenAI-style clients."""
        lines = []
        for c in self.citations:
            where = f"{c.source}" + (f", page {c.page}" if c.page else "")
            lines.append(f'[{c.number}] {c.title} ({where}): "{c.quote}"')
        return "\n".join(lines)

    def related_block(self) -> str:
        """The related passages as plain text (title, where, the passage's first words)."""
        lines = []
        for r in self.related:
            where = f"{r.source}" + (f", page {r.page}" if r.page else "")
            excerpt = " ".join(r.passage.split())
            lines.append(f"- {r.title} ({where}): {excerpt[:160]}{'…' if len(excerpt) > 160 else ''}")
        return "\n".join(lines)


class CitationBook:
    """Numbers citations 1, 2, ... in order of first use while an answer is written: one per quoted sentence."""

    def __init__(self, passages: list[Passage]) -> None:
        self.passages = passages
        self.citations: list[Citation] = []
        self._numbers: dict[tuple[int, tuple[int, int]], int] = {}

    def cite(self, support: Support) -> int:
        key = (support.passage_index, support.quote_span)
        if key in self._numbers:
            return self._numbers[key]
        p = self.passages[support.passage_index]
        lo, hi = support.quote_span
        number = len(self.citations) + 1
        self.citations.append(
            Citation(
                number=number,
                chunk_id=p.id,
                source=p.source,
                title=p.title,
                page=p.page,
                passage=p.text,
                passage_start=p.start,
                passage_end=p.end,
                quote=p.text[lo:hi],
                quote_start=p.start + lo,
                quote_end=p.start + hi,
                support=round(support.score, 3),
                supported=support.supported,
                view_url=view_path(p.id, p.start + lo, p.start + hi, p.collection),
                collection=p.collection,
            )
        )
        self._numbers[key] = number
        return number
