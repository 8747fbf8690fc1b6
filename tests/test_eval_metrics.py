"""Evaluation metrics on small hand-made cases; every expected value is worked out in the comment beside it."""

from __future__ import annotations

import math

import pytest

from bot.answer.markers import strip_markers
from bot.eval.metrics import (
    METRIC_NAMES,
    PER_QUESTION,
    contains_evidence,
    contains_reference,
    exact_match,
    first_relevant_rank,
    hit_at,
    hit_curve,
    latency_scores,
    mean,
    ndcg_at,
    normalise_answer,
    normalise_space,
    percentile,
    reciprocal_rank,
    refusal_scores,
    retrieval_scores,
    share,
    token_f1,
)
from bot.eval.run import Gate

F, T = False, True


def test_relevance_ignores_whitespace_and_case() -> None:
    assert normalise_space("  The\n quick\t\tFox ") == "the quick fox"
    assert contains_evidence("It was  between 100\nand 137 metres tall.", "Between 100 and 137 metres")
    assert not contains_evidence("It was between 100 and 137 metres tall.", "between 100 and 138 metres")
    assert not contains_evidence("anything at all", "")  # no evidence: nothing is relevant


def test_relevance_reads_a_word_hyphenated_at_a_pdf_line_end_as_one_word() -> None:
    """Evidence copied from a PDF's raw text ("unstoppa- ble") is found in docbot's cleaned text, and the reverse."""
    assert contains_evidence("a secure and unstoppable computer program", "secure and unstoppa- ble computer")
    assert contains_evidence("some self- organizing nodes", "some self-organizing nodes")
    assert contains_evidence("the \ufb01nal block", "the final block")
    assert not contains_evidence("a secure and unstable program", "secure and unstoppa- ble")


def test_ranks_hits_and_reciprocal_rank() -> None:
    ranking = [F, T, F, T]
    assert first_relevant_rank(ranking) == 2
    assert [hit_at(ranking, k) for k in (1, 2, 3, 10)] == [0.0, 1.0, 1.0, 1.0]
    assert reciprocal_rank(ranking) == 0.5  # first relevant at rank 2
    assert first_relevant_rank([F, F]) is None
    assert reciprocal_rank([F, F]) == 0.0
    assert reciprocal_rank([F] * 10 + [T]) == pytest.approx(1 / 11)  # found below the top 10 still counts for MRR


def test_ndcg_by_hand() -> None:
    # relevant at ranks 2 and 4: DCG = 1/log2(3) + 1/log2(5) = 0.63093 + 0.43068 = 1.06161
    # ideal: both first, IDCG = 1/log2(2) + 1/log2(3) = 1 + 0.63093 = 1.63093 → 0.65092
    assert ndcg_at([F, T, F, T]) == pytest.approx(0.65092, abs=1e-5)
    assert ndcg_at([F, T, F, T]) == pytest.approx((1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3)))
    assert ndcg_at([T, F, F]) == 1.0
    assert ndcg_at([F, F, T]) == 0.5  # 1/log2(4) over an ideal of 1
    assert ndcg_at([F, F, F]) == 0.0
    assert ndcg_at([F] * 10 + [T]) == 0.0  # relevant only at rank 11: nothing gained in the top 10, ideal 1
    assert ndcg_at([F, T], k=1) == 0.0


def test_retrieval_scores_keys() -> None:
    scores = retrieval_scores([F, F, T])  # evidence at rank 3
    assert scores == {"hit@1": 0.0, "hit@3": 1.0, "hit@5": 1.0, "hit@10": 1.0, "mrr": 1 / 3, "ndcg@10": 0.5}


def test_answer_normalisation_exact_match_and_markers() -> None:
    assert normalise_answer("The Cat, sat!  On a mat.") == "cat sat on mat"
    assert exact_match("the air strikes.", ["Air strikes"]) == 1.0
    assert exact_match("air strikes again", ["air strikes"]) == 0.0
    assert exact_match("anything", []) == 0.0
    assert strip_markers("Air strikes resumed [1]. Then more [2, 3].") == "Air strikes resumed. Then more."


def test_token_f1_by_hand() -> None:
    # prediction air strikes against is targets (5 tokens), reference air strikes (2): common 2,
    # precision 2/5, recall 2/2, F1 = 2·0.4·1 / 1.4 = 4/7
    assert token_f1("air strikes against IS targets", ["air strikes"]) == pytest.approx(4 / 7)
    # bags count repeats: x y y against y y z → common 2, precision 2/3, recall 2/3, F1 2/3
    assert token_f1("x y y", ["y y z"]) == pytest.approx(2 / 3)
    # the best reference wins: 0 against green pear, 2/3 against red (precision 1/2, recall 1)
    assert token_f1("red apple", ["green pear", "red"]) == pytest.approx(2 / 3)
    assert token_f1("", ["red"]) == 0.0
    assert token_f1("red", []) == 0.0


def test_containment_matches_whole_tokens() -> None:
    assert contains_reference("They resumed air strikes [1].", ["air strikes"]) == 1.0
    assert contains_reference("The Iraqis voted.", ["Iraq"]) == 0.0  # not a whole-token match
    assert contains_reference("airstrikes", ["air strikes"]) == 0.0
    assert contains_reference("anything", ["", "the"]) == 0.0  # references that normalise to nothing never match


def test_refusal_precision_and_recall_by_hand() -> None:
    # refused: items 0 (unanswerable) and 1 (answerable) → precision 1/2
    # unanswerable: items 0 (refused) and 2 (answered) → recall 1/2; answerable: 1 (refused), 3 → 1/2 refused
    scores = refusal_scores(refused=[T, T, F, F], answerable=[F, T, F, T])
    assert scores == {
        "refusal_precision": 0.5,
        "refusal_recall": 0.5,
        "refusal_recall_near": None,
        "refusal_recall_off": None,
        "answerable_refused": 0.5,
    }
    # nothing refused: precision has nothing to measure; recall is 0 of 1
    nothing = refusal_scores([F, F], [F, T])
    assert (nothing["refusal_precision"], nothing["refusal_recall"], nothing["answerable_refused"]) == (None, 0.0, 0.0)
    # no unanswerable question: recall has nothing to measure
    assert refusal_scores([T, F], [T, T])["refusal_recall"] is None
    # by kind: the near-topic unanswerable one refused, the off-topic one answered
    kinds = refusal_scores([T, F, F], [F, F, T], ["near", "off", "answerable"])
    assert (kinds["refusal_recall_near"], kinds["refusal_recall_off"], kinds["answerable_refused"]) == (1.0, 0.0, 0.0)


def test_share_mean_and_percentiles_by_hand() -> None:
    assert share([T, F, F, T]) == 0.5
    assert share([]) is None
    assert mean([1.0, None, 0.0]) == 0.5
    assert mean([None, None]) is None
    # linear interpolation: p50 of 10, 20, 30, 40 sits halfway between 20 and 30;
    # p95 sits at position 0.95·3 = 2.85, i.e. 30 + 0.85·10 = 38.5
    assert percentile([40, 10, 30, 20], 50) == 25.0
    assert percentile([10, 20, 30, 40], 95) == pytest.approx(38.5)
    assert percentile([], 50) is None


def test_latency_scores_by_hand() -> None:
    timings = [
        {"retrieval_ms": 10.0, "generation_ms": 100.0, "total_ms": 110.0},
        {"retrieval_ms": 20.0, "generation_ms": 300.0, "total_ms": 320.0},
    ]
    # two values a < b: p50 = (a + b) / 2, p95 = a + 0.95·(b − a)
    assert latency_scores(timings) == {
        "retrieval_ms_p50": 15.0,
        "retrieval_ms_p95": 19.5,
        "generation_ms_p50": 200.0,
        "generation_ms_p95": 290.0,
        "total_ms_p50": 215.0,
        "total_ms_p95": 309.5,
    }
    assert latency_scores([])["total_ms_p95"] is None


def test_hit_curve_by_hand() -> None:
    # question 1 finds the evidence at rank 2, question 2 at rank 1, question 3 never
    assert hit_curve([[F, T, F], [T, F, F], [F, F, F]], 3) == pytest.approx([1 / 3, 2 / 3, 2 / 3])
    assert hit_curve([], 10) == []


def test_metric_names_are_the_results_and_gate_contract() -> None:
    expected = (
        *("hit@1", "hit@3", "hit@5", "hit@10", "mrr", "ndcg@10"),
        *("exact_match", "f1", "containment", "citation_precision", "citation_support"),
        *("refusal_precision", "refusal_recall", "refusal_recall_near", "refusal_recall_off", "answerable_refused"),
        *("retrieval_ms_p50", "retrieval_ms_p95", "generation_ms_p50", "generation_ms_p95"),
        *("total_ms_p50", "total_ms_p95"),
    )
    assert expected == METRIC_NAMES
    assert METRIC_NAMES[: len(PER_QUESTION)] == PER_QUESTION


def test_gates_parse_and_check() -> None:
    gate = Gate.parse("hit@5=0.9")
    assert gate == Gate("hit@5", 0.9)
    assert Gate.parse(" refusal_recall = 1 ") == Gate("refusal_recall", 1.0)
    assert gate.check({"hit@5": 0.9})["passed"]  # equal is enough
    failed = gate.check({"hit@5": 6 / 7})
    assert not failed["passed"] and failed["reason"] == "0.857 < 0.9"
    unmeasured = Gate.parse("refusal_recall=1").check({"refusal_recall": None})
    assert not unmeasured["passed"] and "not measured" in unmeasured["reason"]


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("hit@5", "expected METRIC=VALUE"),
        ("hit@7=0.5", "unknown metric 'hit@7'"),
        ("hit@5=high", "'high' is not a number"),
        ("hit@5=1.5", "between 0 and 1"),
        ("total_ms_p95=0.5", "lower total_ms_p95 is better"),
    ],
)
def test_bad_gates_say_what_is_wrong(text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        Gate.parse(text)
