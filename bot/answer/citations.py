"""Citations: ``[n]`` markers ↔ passages, the supporting sentence's span in the source, and the support check.

The answer types live here too: every front end (CLI, page, API, eval) renders an :class:`Answer`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from index.protocols import Embedder
from index.retriever import Passage

#: Each pattern that reads document text runs in linear time on any text (tests/test_regex_budget.py): a match
#: starts only where a run of whitespace starts (``(?<!\s)``), since a leading ``\s*`` tried at every space of a
#: long run is quadratic, and a list item's lookahead stays on its own line.
MARKER = re.compile(r"(?<!\s)\s*\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")
_SENTENCE_END = re.compile(
    r"[.!?](?:\s*\[\d{1,3}(?:\s*,\s*\d{1,3})*\])*[\"')\]]*(?P<gap>\s+)(?=[\"'(\[]?[A-Z0-9])"
    r"|(?P<para>\n{2,})"
    r"|(?P<item>\n)(?=[^\S\n]*(?:[-*•#]|\d+[.)]\s))"
)
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'-]*")
_stemmers = threading.local()
STOPWORDS = frozenset(
    "a an and are as at be been but by can could did do does for from had has have he her his how i if in into "
    "is it its of on or our she so than that the their them then there these they this those to was we were "
    "what when where which who whom why will with would you your about after also any more most not no only "
    "other over such up".split()
)

#: A claim is supported by a passage sentence when that sentence holds at least this share of the claim's
#: content words (small models that invent things mostly add words the passage does not have) ...
LEXICAL_SUPPORT = 0.75
#: ... and the two are at least this close in meaning (cosine of their embeddings). Both must hold: on
#: SmolLM2's answers, either measure alone passed most invented sentences (see tests/test_answering.py).
SEMANTIC_SUPPORT = 0.5
#: A claim bears on the question when it, or the sentence supporting it, is at least this close to the
#: question. Far below any real answer; it stops a model repeating a passage's unrelated text (such as
#: instructions planted in a document) with a citation to it.
RELEVANCE_FLOOR = 0.1


def content_words(text: str) -> list[str]:
    """Lower-cased words that carry meaning (no stop words), stemmed (Snowball) for overlap checks."""
    words = (word.removesuffix("'s") for word in _WORD.findall(text.lower().replace("’", "'")))
    return _stem([word for word in words if word not in STOPWORDS and len(word) > 1])


def _stem(words: list[str]) -> list[str]:
    stemmer = getattr(_stemmers, "english", None)
    if stemmer is None:  # PyStemmer objects are not thread-safe: one per thread
        import Stemmer

        stemmer = _stemmers.english = Stemmer.Stemmer("english")
    return list(stemmer.stemWords(words))


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of ``text``, trimmed of surrounding whitespace."""
    spans = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        group = match.lastgroup or "gap"
        spans.append((start, match.start(group)))
        start = match.end(group)
    spans.append((start, len(text)))
    trimmed = []
    for lo, hi in spans:
        while lo < hi and text[lo].isspace():
            lo += 1
        while hi > lo and text[hi - 1].isspace():
            hi -= 1
        if hi > lo:
            trimmed.append((lo, hi))
    return trimmed


def lexical_overlap(claim: str, evidence: str) -> float:
    """Share of the claim's content words found in the evidence."""
    claim_words = set(content_words(claim))
    if not claim_words:
        return 0.0
    return len(claim_words & set(content_words(evidence))) / len(claim_words)


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


@dataclass(frozen=True, slots=True)
class Support:
    """How well one passage sentence (the quote) supports a claim, and whether the claim is on the question."""

    passage_index: int
    quote_span: tuple[int, int]  # within the passage text
    lexical: float  # share of the claim's content words found in the quote
    semantic: float  # cosine similarity of claim and quote, clipped to 0..1
    relevance: float  # similarity of the claim, or of the quote, to the question

    @property
    def score(self) -> float:
        return (self.lexical + self.semantic) / 2

    @property
    def supported(self) -> bool:
        return self.lexical >= LEXICAL_SUPPORT and self.semantic >= SEMANTIC_SUPPORT

    @property
    def on_topic(self) -> bool:
        return self.relevance >= RELEVANCE_FLOOR


class Evidence:
    """The sentences of one turn's passages, embedded once, against which each claim of the answer is checked."""

    def __init__(self, embedder: Embedder, question: str, passages: list[Passage]) -> None:
        self._embedder = embedder
        self._candidates = [(i, span) for i, p in enumerate(passages) for span in sentence_spans(p.text)]
        self._texts = [passages[i].text[lo:hi] for i, (lo, hi) in self._candidates]
        vectors = embedder.encode([question, *self._texts])
        self._question = vectors[0]
        self._vectors = vectors[1:]
        self._relevance = self._vectors @ self._question

    def support(self, claim: str, cited: set[int]) -> Support | None:
        """The sentence that best supports ``claim``: from a ``cited`` passage if one supports it, else from any."""
        if not self._candidates:
            return None
        claim_vector = self._embedder.encode([claim])[0]
        semantic = np.clip(self._vectors @ claim_vector, 0.0, 1.0)
        claim_relevance = float(claim_vector @ self._question)
        options = [
            Support(i, span, lexical_overlap(claim, text), float(sim), max(claim_relevance, float(rel)))
            for (i, span), text, sim, rel in zip(self._candidates, self._texts, semantic, self._relevance, strict=True)
        ]
        preferred = _best([s for s in options if s.passage_index in cited])
        if preferred is not None and preferred.supported:
            return preferred
        return _best(options)


def _best(options: list[Support]) -> Support | None:
    return max(options, key=lambda s: (s.supported, s.score), default=None)


class SupportChecker:
    """Checks claims against the passage sentences: lexical and semantic overlap, and relevance to the question."""

    def __init__(self, embedder: Embedder) -> None:
        self._embedder = embedder

    def evidence(self, question: str, passages: list[Passage]) -> Evidence:
        return Evidence(self._embedder, question, passages)


def parse_markers(sentence: str) -> tuple[str, list[int]]:
    """A sentence without its ``[n]`` markers, and the numbers they held (in order, no repeats)."""
    numbers: list[int] = []
    for match in MARKER.finditer(sentence):
        for part in match.group(1).split(","):
            n = int(part)
            if n not in numbers:
                numbers.append(n)
    return MARKER.sub("", sentence).strip(), numbers


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
            )
        )
        self._numbers[key] = number
        return number


def sentences_of_stream(pieces: Iterable[str]) -> Iterator[str]:
    """Re-cut a stream of text pieces into whole sentences (the last one when the stream ends)."""
    buffer = ""
    for piece in pieces:
        buffer += piece
        spans = sentence_spans(buffer)
        if len(spans) > 1:
            for lo, hi in spans[:-1]:
                yield buffer[lo:hi]
            buffer = buffer[spans[-1][0] :]
    if buffer.strip():
        yield buffer.strip()
