"""The support check: does a sentence of the answer say what a passage sentence says, and does it bear on the question.

Small models invent things; every sentence a model writes is checked here before it is shown with a citation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bot.answer.passage_sentences import PassageSentences
from bot.answer.text import content_words
from index.protocols import Embedder, Store
from index.types import Coverage, Passage, Retrieval

#: A claim is supported by a passage sentence when that sentence holds at least this share of the claim's
#: content words (small models that invent things mostly add words the passage does not have) ...
LEXICAL_SUPPORT = 0.75
#: ... and the two are at least this close in meaning (cosine of their embeddings). Both must hold: on
#: SmolLM2's answers, either measure alone passed most invented sentences (see tests/test_answering.py).
SEMANTIC_SUPPORT = 0.5


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
    relevance: float  # similarity to the question of the claim, the quote or the quote's passage (the highest)
    on_topic: bool = True  # the claim bears on the question: ``relevance`` covers it (index.retriever.Coverage)

    @property
    def score(self) -> float:
        return (self.lexical + self.semantic) / 2

    @property
    def supported(self) -> bool:
        return self.lexical >= LEXICAL_SUPPORT and self.semantic >= SEMANTIC_SUPPORT


class Evidence:
    """The sentences of one turn's passages, against which each claim of the answer is checked.

    A claim bears on the question when it, the sentence supporting it or that sentence's passage is close enough
    to the question to cover it by the retriever's own rule (``coverage``): the rule that decides whether the
    question is answered at all. It stops a model repeating a passage's unrelated text (such as instructions
    planted in a document) with a citation to it.
    """

    def __init__(
        self,
        embedder: Embedder,
        question: np.ndarray,
        sentences: PassageSentences,
        passages: list[Passage],
        coverage: Coverage,
    ) -> None:
        self._embedder = embedder
        self._candidates = sentences.candidates
        self._texts = sentences.texts
        self._question = question
        self._vectors = sentences.vectors
        self._coverage = coverage
        passage_similarity = [-1.0 if p.similarity is None else p.similarity for p in passages]
        own = self._vectors @ self._question
        self._relevance = np.maximum(own, [passage_similarity[i] for i, _ in self._candidates]) if len(own) else own

    def support(self, claim: str, cited: set[int]) -> Support | None:
        """The sentence that best supports ``claim``: from a ``cited`` passage if one supports it, else from any."""
        if not self._candidates:
            return None
        claim_vector = self._embedder.encode_queries([claim])[0]
        semantic = np.clip(self._vectors @ claim_vector, 0.0, 1.0)
        claim_relevance = float(claim_vector @ self._question)
        options = []
        for (i, span), text, sim, rel in zip(self._candidates, self._texts, semantic, self._relevance, strict=True):
            relevance = max(claim_relevance, float(rel))
            lexical = lexical_overlap(claim, text)
            options.append(Support(i, span, lexical, float(sim), relevance, self._coverage.covers(relevance)))
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

    def evidence(self, question: str, retrieval: Retrieval) -> Evidence:
        """The passages' sentences (vectors from the index) against the question (the retriever's vector reused)."""
        passages = retrieval.passages
        vector = retrieval.query_vector
        if vector is None:
            vector = self._embedder.encode_queries([question])[0]
        sentences = PassageSentences.of(passages, self._store, self._embedder)
        return Evidence(self._embedder, vector, sentences, passages, retrieval.coverage)
