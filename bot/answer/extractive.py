"""The extractive answerer: the passage sentences that best answer the question, each with its citation.

Deterministic, offline and fast: no language model, only the embedding model already loaded.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bot.answer.support import lexical_overlap
from bot.answer.text import MONTHS, YEAR, content_words, sentence_spans
from index.protocols import Embedder
from index.retriever import Passage, near_duplicate

#: Weight of the semantic similarity in a sentence's score; the rest is query-word coverage.
SEMANTIC_WEIGHT = 0.6
#: A sentence scoring below this does not answer the question: the bot says the documents do not cover it.
ANSWER_FLOOR = 0.42
#: Further sentences join the answer when they score at least this share of the best one.
COMPANION_SHARE = 0.85
MIN_WORDS = 4


#: What a question asks for, and what a sentence holding that kind of answer looks like.
_ANSWER_TYPES = (
    (re.compile(r"^\s*how (?:many|much)\b|\bwhat (?:number|percentage|share)\b", re.I), re.compile(r"\d")),
    (
        re.compile(r"^\s*when\b|\bwhat (?:year|date|month|day)\b", re.I),
        re.compile(
            rf"{YEAR}|\b(?:{'|'.join(MONTHS)})\b|\b(?:last|next|this) (?:week|month|year)\b",
            re.I,
        ),
    ),
    (re.compile(r"^\s*who\b", re.I), re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]+(?:[ -][A-Z][a-z]+)+")),
)
#: Multiplies the score of a sentence that holds the kind of answer asked for (a number for "how many"...);
#: a factor, not a bonus, so sentences of the same kind keep their ratios (companions stay as they were).
ANSWER_TYPE_FACTOR = 1.15
#: Multiplies the score of a sentence the conversation has already given.
REPEAT_FACTOR = 0.8


def answer_type_factor(question: str, sentence: str) -> float:
    for asks, holds in _ANSWER_TYPES:
        if asks.search(question):
            return ANSWER_TYPE_FACTOR if holds.search(sentence) else 1.0
    return 1.0


@dataclass(frozen=True, slots=True)
class Pick:
    passage_index: int
    span: tuple[int, int]  # within the passage text
    score: float


class ExtractiveAnswerer:
    def __init__(self, embedder: Embedder, max_sentences: int) -> None:
        self._embedder = embedder
        self._max_sentences = max_sentences

    def pick(self, query: str, passages: list[Passage], already_said: Sequence[str] = ()) -> list[Pick]:
        """Best answering sentences, best first; empty when none is good enough.

        Sentences found in ``already_said`` (earlier answers of the conversation) are demoted, so a follow-up
        is not answered with the previous answer unless that is still clearly the best one.
        """
        candidates = [
            (i, span)
            for i, p in enumerate(passages)
            for span in sentence_spans(p.text)
            if len(content_words(p.text[span[0] : span[1]])) >= MIN_WORDS
        ]
        if not candidates:
            return []
        texts = [passages[i].text[lo:hi] for i, (lo, hi) in candidates]
        vectors = self._embedder.encode([query, *texts])
        similarity = np.clip(vectors[1:] @ vectors[0], 0.0, 1.0)
        scored = sorted(
            (
                Pick(
                    i,
                    span,
                    (SEMANTIC_WEIGHT * float(sim) + (1 - SEMANTIC_WEIGHT) * lexical_overlap(query, text))
                    * answer_type_factor(query, text)
                    * (REPEAT_FACTOR if any(text in said for said in already_said) else 1.0),
                )
                for (i, span), text, sim in zip(candidates, texts, similarity, strict=True)
            ),
            key=lambda pick: pick.score,
            reverse=True,
        )
        best = scored[0]
        if best.score < ANSWER_FLOOR:
            return []
        chosen = [best]
        for pick in scored[1:]:
            if len(chosen) == self._max_sentences or pick.score < COMPANION_SHARE * best.score:
                break
            text = passages[pick.passage_index].text[pick.span[0] : pick.span[1]]
            if any(near_duplicate(text, passages[c.passage_index].text[c.span[0] : c.span[1]], 0.6) for c in chosen):
                continue
            chosen.append(pick)
        return chosen
