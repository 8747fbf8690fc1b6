"""The extractive answerer: the passage sentences that best answer the question, each with its citation.

Deterministic, offline and fast: no language model, only the embedding model already loaded.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bot.answer.novelty import ECHO_WORDS, echoes, new_words
from bot.answer.passage_sentences import PassageSentences
from bot.answer.question_parts import question_parts
from bot.answer.supplies import ANSWER_TYPES, holds_share, restrictions, supplies_at
from bot.answer.support import lexical_overlap
from bot.answer.text import content_words, sentence_spans
from index.protocols import Embedder, Store
from index.retriever import near_duplicate
from index.types import Passage

#: Weight of the semantic similarity in a sentence's score; the rest is query-word coverage.
SEMANTIC_WEIGHT = 0.6
#: Further sentences join the answer when they score at least this share of the best one ...
COMPANION_SHARE = 0.85
#: ... and, when from another passage than the best one's, at least this share (a passage holding the answer
#: mostly holds its companions too: those from elsewhere seldom carry the evidence).
ELSEWHERE_SHARE = 0.9
#: The lead passage answers the parts of a multi-part question best taken together (see _lead_passage). A part is
#: answered from it when its best sentence there scores at least this share of the part's best sentence anywhere ...
LEAD_SHARE = 0.8
#: ... and every other sentence cited (a part's answer from another passage; a companion) scores at least this share
#: of the best one: a part answered only by a sentence far below the best is left unanswered, not cited.
CITE_SHARE = 0.0
MIN_WORDS = 4


#: Multiplies the score of a sentence that holds the kind of answer asked for (a number for "how many"...);
#: a factor, not a bonus, so sentences of the same kind keep their ratios (companions stay as they were).
ANSWER_TYPE_FACTOR = 1.15
#: Multiplies the score of a sentence the conversation has already given.
REPEAT_FACTOR = 0.8


#: Multiplies the score of a sentence by up to this for holding what the question restricts the answer to (a month,
#: a year, a number), so that those outweigh words the question shares with many sentences.
NAMED_FACTOR = 1.2
#: A sentence lower in the ranking that supplies what is asked is quoted instead of a better-scored one that does
#: not when it scores at least this share of it; below, the documents do not give the answer.
SUPPLY_SHARE = 0.6


def asks_for_type(question: str) -> bool:
    """Whether the question asks for a kind of answer that shows in a sentence (a number, a date, a name...)."""
    return any(kind.asks(question) for kind in ANSWER_TYPES)


def answer_type_factor(question: str, sentence: str) -> float:
    for kind in ANSWER_TYPES:
        if kind.asks(question):
            return ANSWER_TYPE_FACTOR if kind.held_by(sentence) else 1.0
    return 1.0


@dataclass(frozen=True, slots=True)
class Pick:
    passage_index: int
    span: tuple[int, int]  # within the passage text
    score: float


class ExtractiveAnswerer:
    def __init__(self, embedder: Embedder, store: Store, max_sentences: int) -> None:
        self._embedder = embedder
        self._store = store
        self._max_sentences = max_sentences

    def pick(
        self,
        query: str,
        passages: list[Passage],
        already_said: Sequence[str] = (),
        query_vector: np.ndarray | None = None,
    ) -> list[Pick]:
        """The answering sentences, best first: the best one for each part of the question, or for a question
        asking one thing the best one and its close companions. Empty when the passages have no sentence, or when a
        question asking one thing finds no sentence that supplies it (bot.answer.supplies).

        The retriever has already judged that the passages cover the question; when no sentence scores high the
        best one is still the answer (an excerpt of the passage that covers it), not a refusal. Sentences found in
        ``already_said`` (earlier answers of the conversation) are demoted, so a follow-up is not answered with
        the previous answer unless that is still clearly the best one.

        Sentence vectors come from the index; ``query_vector`` (the retriever's) spares embedding the query again:
        only the parts of a multi-part question are embedded here.
        """
        found = PassageSentences.of(passages, self._store, self._embedder)
        keep = [n for n, text in enumerate(found.texts) if len(content_words(text)) >= MIN_WORDS]
        if not keep:
            return []
        candidates = [found.candidates[n] for n in keep]
        texts = [found.texts[n] for n in keep]
        sentence_vectors = found.vectors[keep]
        parts = question_parts(query)
        asked = parts if len(parts) > 1 else []
        to_embed = [query, *asked] if query_vector is None else asked
        embedded = self._embedder.encode_queries(to_embed) if to_embed else np.zeros((0, sentence_vectors.shape[1]))
        vectors = embedded if query_vector is None else np.vstack([query_vector[None, :], embedded])
        whole = np.clip(sentence_vectors @ vectors[0], 0.0, 1.0)
        repeat = [REPEAT_FACTOR if any(text in said for said in already_said) else 1.0 for text in texts]

        def ranked(part: str, similarity: np.ndarray) -> list[Pick]:
            names = restrictions(part)
            picks = (
                Pick(
                    i,
                    span,
                    (SEMANTIC_WEIGHT * float(sim) + (1 - SEMANTIC_WEIGHT) * lexical_overlap(part, text))
                    * answer_type_factor(part, text)
                    * (1 + (NAMED_FACTOR - 1) * holds_share(text, names))
                    * again,
                )
                for (i, span), text, sim, again in zip(candidates, texts, similarity, repeat, strict=True)
            )
            return sorted(picks, key=lambda pick: pick.score, reverse=True)

        if not asked:
            scored = ranked(query, whole)
            supplying = next((p for p in scored if self._supplies(query, p, passages)), None)
            if supplying is None or supplying.score < SUPPLY_SHARE * scored[0].score:
                return []  # near the documents' subject, but no sentence gives what is asked
            return self._with_companions(query, [supplying, *(p for p in scored if p is not supplying)], passages)
        by_part = [
            ranked(part, (whole + np.clip(sentence_vectors @ vectors[n], 0.0, 1.0)) / 2)
            for n, part in enumerate(asked, start=1)
        ]
        lead = _lead_passage(by_part)
        chosen: list[Pick] = []
        for part, part_ranked in zip(asked, by_part, strict=True):
            options = [
                pick
                for pick in (_lead_in(passages, p, part) for p in part_ranked)
                if not any(_overlaps(pick, c) for c in chosen)
            ]
            if not options:
                continue
            in_lead = next((p for p in options if p.passage_index == lead), None)
            chosen.append(
                in_lead if in_lead is not None and in_lead.score >= LEAD_SHARE * options[0].score else options[0]
            )
            if len(chosen) == self._max_sentences:
                break
        chosen.sort(key=lambda pick: pick.score, reverse=True)
        floor = CITE_SHARE * chosen[0].score
        return self._holding_news(query, [p for p in chosen if p.passage_index == lead or p.score >= floor], passages)

    def _with_companions(self, query: str, scored: list[Pick], passages: list[Passage]) -> list[Pick]:
        best = scored[0]
        chosen = [_lead_in(passages, best, query)]
        floor = max(COMPANION_SHARE, CITE_SHARE) * best.score
        elsewhere = ELSEWHERE_SHARE * best.score
        for pick in scored[1:]:
            if len(chosen) == self._max_sentences or pick.score < floor:
                break
            if pick.passage_index != best.passage_index and pick.score < elsewhere:
                continue
            pick = _lead_in(passages, pick, query)
            text = _quote(passages, pick)
            if any(_overlaps(pick, c) or near_duplicate(text, _quote(passages, c), 0.6) for c in chosen):
                continue
            chosen.append(pick)
        return self._holding_news(query, chosen, passages)

    @staticmethod
    def _supplies(query: str, pick: Pick, passages: list[Passage]) -> bool:
        """Whether the pick, with the sentence it leads in to, supplies what the question asks for."""
        return supplies_at(query, passages, pick.passage_index, _lead_in(passages, pick, query).span)

    @staticmethod
    def _holding_news(query: str, picks: list[Pick], passages: list[Passage]) -> list[Pick]:
        """The best pick, then each other one only if it says something the question and the picks before it do not;
        each with the sentence it points back to."""
        kept = picks[:1]
        for pick in picks[1:]:
            known = [query, *(_quote(passages, k) for k in kept)]
            if len(new_words(_quote(passages, pick), known)) >= ECHO_WORDS:
                kept.append(pick)
        return _with_referents(passages, kept)


def _lead_passage(by_part: list[list[Pick]]) -> int:
    """The passage that answers the question as a whole best: the highest sum, over the parts, of its best sentence's
    score for each part (a passage answering every part well beats one answering a single part a little better)."""
    totals: dict[int, float] = {}
    for picks in by_part:
        best: dict[int, float] = {}
        for pick in picks:
            best.setdefault(pick.passage_index, pick.score)
        for passage, score in best.items():
            totals[passage] = totals.get(passage, 0.0) + score
    return max(totals, key=totals.__getitem__)


#: Words that, opening a sentence, point back to the one before it ("He was born in 1872.", "These were later
#: sold."): such a sentence is quoted with the one it refers to.
_POINTS_BACK = re.compile(r"(?:he|she|it|they|his|her|its|their|this|these|those|such|both|the latter)\b", re.I)


def _lead_in(passages: list[Passage], pick: Pick, question: str) -> Pick:
    """A sentence that only leads in to the answer ("There are a number of factors that explain it.") is quoted with
    the sentence after it: it lacks the kind of answer asked for, which the next one holds, or it says next to
    nothing the question did not (it echoes it) and the next one does."""
    text = passages[pick.passage_index].text
    sentence = _quote(passages, pick)
    following = next(((lo, hi) for lo, hi in sentence_spans(text) if lo >= pick.span[1]), None)
    if following is None:
        return pick
    after = text[following[0] : following[1]]
    echo = echoes(sentence, question) and not echoes(after, question)
    typed = (
        asks_for_type(question)
        and answer_type_factor(question, sentence) == 1.0
        and answer_type_factor(question, after) > 1.0
    )
    return Pick(pick.passage_index, (pick.span[0], following[1]), pick.score) if echo or typed else pick


def _with_referents(passages: list[Passage], picks: list[Pick]) -> list[Pick]:
    """Each quote that opens by pointing back ("He was born...") with the sentence before it, so that the answer
    says who or what it is about; not when that sentence is quoted already."""
    out: list[Pick] = []
    for pick in picks:
        text = passages[pick.passage_index].text
        if _POINTS_BACK.match(text, pick.span[0]):
            start = max((lo for lo, hi in sentence_spans(text) if hi <= pick.span[0]), default=pick.span[0])
            wider = Pick(pick.passage_index, (start, pick.span[1]), pick.score)
            if not any(_overlaps(wider, other) for other in picks if other is not pick):
                pick = wider
        out.append(pick)
    return out


def _quote(passages: list[Passage], pick: Pick) -> str:
    return passages[pick.passage_index].text[pick.span[0] : pick.span[1]]


def _overlaps(a: Pick, b: Pick) -> bool:
    return a.passage_index == b.passage_index and a.span[0] < b.span[1] and b.span[0] < a.span[1]
