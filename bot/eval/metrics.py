"""The evaluation metrics: pure functions over one question, and their aggregation over a run.

Rules that hold everywhere:

- A passage is relevant when it contains the evidence span after whitespace, case, ligature and hyphen
  normalisation (evidence copied from a PDF's raw text, "unstoppa- ble", is found in the cleaned "unstoppable").
- Answers are compared SQuAD-style: lower case, no punctuation, no articles (a, an, the), single spaces.
- A metric with nothing to measure (no evidence, no citations, no unanswerable question, ...) is ``None``,
  never 0 or 1: it is ``null`` in JSON, ``—`` in Markdown, and it fails a ``--fail-under`` gate.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from index.text_clean import fold_chars

#: The ranks at which retrieval hits are reported.
HIT_KS = (1, 3, 5, 10)
#: nDCG is computed over this many passages.
NDCG_K = 10
LATENCY_PARTS = ("retrieval", "generation", "total")
#: ``compare`` marks a latency as regressed only when it grows by more than this share (timings are noisy).
LATENCY_TOLERANCE = 0.10
PERCENTILES = (50, 95)

_LATENCY_LABEL = {"retrieval": "retrieval", "generation": "answer generation", "total": "whole-turn"}
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation + "‘’“”–—")


@dataclass(frozen=True, slots=True)
class Metric:
    name: str  # as in results.json and --fail-under
    meaning: str
    higher_is_better: bool = True
    per_question: bool = True  # averaged over the questions it applies to (else computed over the run)


METRICS: tuple[Metric, ...] = (
    *(Metric(f"hit@{k}", f"evidence in the top {k} passage(s)") for k in HIT_KS),
    Metric("mrr", "mean reciprocal rank of the first passage with the evidence"),
    Metric(f"ndcg@{NDCG_K}", f"nDCG of the top {NDCG_K} passages (binary relevance)"),
    Metric("exact_match", "answer equals a reference (normalised)"),
    Metric("f1", "token F1 against the best reference"),
    Metric("containment", "answer contains a reference (normalised)"),
    Metric("citation_precision", "share of cited passages that contain the evidence"),
    Metric("citation_support", "share of citations whose quote supports the sentence"),
    Metric("refusal_precision", "refused questions that were unanswerable", per_question=False),
    Metric("refusal_recall", "unanswerable questions that were refused", per_question=False),
    Metric("refusal_recall_near", "near-topic questions (kind near) that were refused", per_question=False),
    Metric("refusal_recall_off", "off-topic questions (kind off) that were refused", per_question=False),
    Metric("answerable_refused", "answerable questions that were refused", False, per_question=False),
    *(
        Metric(f"{part}_ms_p{p}", f"{_LATENCY_LABEL[part]} latency, {p}th percentile (ms)", False, per_question=False)
        for part in LATENCY_PARTS
        for p in PERCENTILES
    ),
)
METRIC_NAMES = tuple(m.name for m in METRICS)
BY_NAME = {m.name: m for m in METRICS}
PER_QUESTION = tuple(m.name for m in METRICS if m.per_question)


# --- retrieval ---------------------------------------------------------------------------------


def normalise_space(text: str) -> str:
    """Whitespace runs become one space, case is folded: the form in which evidence is looked for."""
    return " ".join(text.split()).casefold()


#: A hyphen inside a word, with any white space after it: "unstoppa- ble", "unstoppa-ble" and "unstoppable" (and
#: "self- organizing", "self-organizing") are one word to the evidence test, whichever text a question set quotes.
_WORD_HYPHEN = re.compile(r"(?<=\w)-\s*(?=\w)")


def evidence_form(text: str) -> str:
    """The form in which evidence is looked for: white space and case (:func:`normalise_space`), ligatures and
    odd spaces (:func:`index.text_clean.fold_chars`) and hyphens inside words (left out) made alike."""
    return _WORD_HYPHEN.sub("", normalise_space(fold_chars(text)))


def contains_evidence(passage: str, evidence: str) -> bool:
    needle = evidence_form(evidence)
    return bool(needle) and needle in evidence_form(passage)


def first_relevant_rank(relevance: Sequence[bool]) -> int | None:
    """1-based rank of the first relevant passage, None when none is."""
    return next((rank for rank, relevant in enumerate(relevance, start=1) if relevant), None)


def hit_at(relevance: Sequence[bool], k: int) -> float:
    return 1.0 if any(relevance[:k]) else 0.0


def reciprocal_rank(relevance: Sequence[bool]) -> float:
    rank = first_relevant_rank(relevance)
    return 0.0 if rank is None else 1.0 / rank


def ndcg_at(relevance: Sequence[bool], k: int = NDCG_K) -> float:
    """Binary-relevance nDCG@k; the ideal ranking puts every relevant retrieved passage first.

    The relevant passages are those found anywhere in the ranked list (it may be deeper than ``k``);
    with none, the score is 0.
    """
    gains = [1.0 / math.log2(rank + 1) for rank, relevant in enumerate(relevance[:k], start=1) if relevant]
    ideal = [1.0 / math.log2(rank + 1) for rank in range(1, min(sum(relevance), k) + 1)]
    return sum(gains) / sum(ideal) if ideal else 0.0


def retrieval_scores(relevance: Sequence[bool]) -> dict[str, float]:
    scores = {f"hit@{k}": hit_at(relevance, k) for k in HIT_KS}
    scores["mrr"] = reciprocal_rank(relevance)
    scores[f"ndcg@{NDCG_K}"] = ndcg_at(relevance)
    return scores


# --- answers -----------------------------------------------------------------------------------


def normalise_answer(text: str) -> str:
    text = text.lower().translate(_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, references: Sequence[str]) -> float:
    guess = normalise_answer(prediction)
    return 1.0 if any(guess == normalise_answer(ref) for ref in references) else 0.0


def _f1(prediction: list[str], reference: list[str]) -> float:
    common = sum((Counter(prediction) & Counter(reference)).values())
    if common == 0:
        return 0.0
    precision = common / len(prediction)
    recall = common / len(reference)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, references: Sequence[str]) -> float:
    """Best token F1 of the prediction against any reference (bags of normalised tokens)."""
    tokens = normalise_answer(prediction).split()
    return max((_f1(tokens, normalise_answer(ref).split()) for ref in references), default=0.0)


def contains_reference(prediction: str, references: Sequence[str]) -> float:
    """1 when some non-empty reference appears in the prediction as whole normalised tokens."""
    padded = f" {normalise_answer(prediction)} "
    return 1.0 if any((ref := normalise_answer(r)) and f" {ref} " in padded for r in references) else 0.0


def answer_scores(prediction: str, references: Sequence[str]) -> dict[str, float]:
    return {
        "exact_match": exact_match(prediction, references),
        "f1": token_f1(prediction, references),
        "containment": contains_reference(prediction, references),
    }


# --- citations and refusals --------------------------------------------------------------------


def share(flags: Sequence[bool]) -> float | None:
    """Share of true flags; None for an empty sequence."""
    return sum(flags) / len(flags) if flags else None


def refusal_scores(
    refused: Sequence[bool], answerable: Sequence[bool], kinds: Sequence[str | None] | None = None
) -> dict[str, float | None]:
    """Precision: of the refused questions, the unanswerable share. Recall: of the unanswerable, the refused share,
    also for each kind of unanswerable question (``near``: about the documents' subject, asking what they do not
    give; ``off``: about something else). ``answerable_refused``: of the answerable, the refused share."""
    pairs = list(zip(refused, answerable, strict=True))
    kinds = list(kinds) if kinds is not None else [None] * len(pairs)
    return {
        "refusal_precision": share([not a for r, a in pairs if r]),
        "refusal_recall": share([r for r, a in pairs if not a]),
        "refusal_recall_near": share([r for (r, a), k in zip(pairs, kinds, strict=True) if not a and k == "near"]),
        "refusal_recall_off": share([r for (r, a), k in zip(pairs, kinds, strict=True) if not a and k == "off"]),
        "answerable_refused": share([r for r, a in pairs if a]),
    }


# --- aggregation -------------------------------------------------------------------------------


def mean(values: Sequence[float | None]) -> float | None:
    """Mean of the values that are not None; None when there are none."""
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def percentile(values: Sequence[float], p: float) -> float | None:
    """Linear-interpolation percentile (numpy's default); None for no values."""
    return float(np.percentile(values, p)) if values else None


def latency_scores(timings: Sequence[dict[str, float]]) -> dict[str, float | None]:
    scores: dict[str, float | None] = {}
    for part in LATENCY_PARTS:
        values = [t[f"{part}_ms"] for t in timings if f"{part}_ms" in t]
        for p in PERCENTILES:
            value = percentile(values, p)
            scores[f"{part}_ms_p{p}"] = None if value is None else round(value, 1)
    return scores


def hit_curve(relevances: Sequence[Sequence[bool]], depth: int) -> list[float]:
    """hit@k for k = 1..depth, over the questions that have evidence."""
    if not relevances:
        return []
    return [sum(hit_at(r, k) for r in relevances) / len(relevances) for k in range(1, depth + 1)]
