"""The support check: does a sentence of the answer say what a passage sentence says, and does it bear on the question.

Small models invent things; every sentence a model writes is checked here before it is shown with a citation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bot.answer.passage_sentences import PassageSentences
from bot.answer.text import content_words
from index.protocols import Embedder, Store
from index.retriever import Passage

#: A claim is supported by a passage sentence when that sentence holds at least this share of the claim's
#: content words (small models that invent things mostly add words the passage does not have) ...
LEXICAL_SUPPORT = 0.75
#: ... and the two are at least this close in meaning (cosine of their embeddings). Both must hold: on
#: SmolLM2's answers, either measure alone passed most invented sentences (see tests/test_answering.py).
SEMANTIC_SUPPORT = 0.5
#: A claim bears on the question when it, or the sentence supporting it, is at least this close to the
#: question (cosine). Not the retriever's ``relevance_floor`` (0.25, a setting: whether the documents cover the
#: question at all); this one is per claim. Far below any real answer; it stops a model repeating a passage's
#: unrelated text (such as instructions planted in a document) with a citation to it.
SUPPORT_RELEVANCE_FLOOR = 0.1


def lexical_overlap(claim: str, evidence: str) -> float:
    """Share of the claim's content words found in the evidence."""
    claim_words = set(content_words(claim))
    if not claim_words:
        return 0.0
    return len(claim_words & set(content_words(evidence))) / len(claim_words)


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
        return self.relevance >= SUPPORT_RELEVANCE_FLOOR


class Evidence:
    """The sentences of one turn's passages, embedded once, against which each claim of the answer is checked."""

    def __init__(self, embedder: Embedder, question: np.ndarray, sentences: PassageSentences) -> None:
        self._embedder = embedder
        self._candidates = sentences.candidates
        self._texts = sentences.texts
        self._question = question
        self._vectors = sentences.vectors
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

    def __init__(self, embedder: Embedder, store: Store) -> None:
        self._embedder = embedder
        self._store = store

    def evidence(self, question: str, passages: list[Passage], question_vector: np.ndarray | None = None) -> Evidence:
        """The passages' sentences (vectors from the index) against the question (its vector reused when given)."""
        vector = self._embedder.encode([question])[0] if question_vector is None else question_vector
        return Evidence(self._embedder, vector, PassageSentences.of(passages, self._store, self._embedder))
