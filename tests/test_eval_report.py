"""A run's results document, its Markdown summary, its HTML page and run comparison, on hand-made questions.

Four questions (k = 5), metric values worked out by hand:

- q1 answerable: evidence at rank 1, answer "Air strikes [1]." (reference "air strikes"), one citation that
  holds the evidence and is supported; 10 / 100 / 110 ms.
- q2 answerable: evidence at rank 7, refused; 20 / 0 / 20 ms.
- q3 unanswerable, answered anyway with one unsupported citation; 30 / 200 / 230 ms.
- q4 unanswerable, refused, with HTML in its question; 40 / 0 / 40 ms.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest

from bot.eval.compare import MetricDelta, compare_runs
from bot.eval.metrics import answer_scores, retrieval_scores, share
from bot.eval.report import compare_markdown, highlight, render_html, summary_markdown
from bot.eval.run import (
    CitedPassage,
    Gate,
    QuestionResult,
    RetrievedPassage,
    RunSpec,
    load_results,
    question_problems,
    results_document,
    write_run,
)

HOSTILE = "<script>alert(1)</script> & 'x' \"y\""
K = 5


def _retrieved(relevant_at: int | None) -> list[RetrievedPassage]:
    return [
        RetrievedPassage(rank, f"c{rank}", "doc.txt", 100 * rank, 100 * rank + 90, 0.1, rank == relevant_at, f"p{rank}")
        for rank in range(1, 11)
    ]


def _citation(passage: str, evidence: str, supported: bool) -> CitedPassage:
    return CitedPassage(
        number=1,
        source="doc.txt",
        title="doc",
        page=None,
        quote=passage,
        quote_start=0,
        quote_end=len(passage),
        passage=passage,
        supported=supported,
        support=0.9 if supported else 0.2,
        contains_evidence=bool(evidence) and evidence in passage,
        view_url=f"/view/{'ab' * 16}?quote=0-{len(passage)}#cited",
    )


def _question(
    qid: str,
    question: str,
    *,
    answerable: bool,
    relevant_at: int | None,
    answer: str,
    refused: bool,
    citations: list[CitedPassage],
    ms: tuple[float, float],
) -> QuestionResult:
    evidence = "resume air strikes" if answerable else ""
    references = ["air strikes"] if answerable else []
    retrieved = _retrieved(relevant_at)
    scores: dict[str, float | None] = dict.fromkeys(
        ("hit@1", "hit@3", "hit@5", "hit@10", "mrr", "ndcg@10", "exact_match", "f1", "containment")
    )
    if answerable:
        scores |= retrieval_scores([p.relevant for p in retrieved])
        scores |= answer_scores("" if refused else answer.replace(" [1]", ""), references)
    scores["citation_precision"] = share([c.contains_evidence for c in citations]) if evidence else None
    scores["citation_support"] = share([c.supported for c in citations])
    result = QuestionResult(
        id=qid,
        question=question,
        history=[],
        answers=references,
        evidence=evidence,
        answerable=answerable,
        source="doc.txt" if answerable else None,
        query=question,
        answer=answer,
        refused=refused,
        generator="extractive",
        notice=None,
        citations=citations,
        retrieved=retrieved,
        evidence_rank=relevant_at,
        scores=scores,
        timings={"retrieval_ms": ms[0], "generation_ms": ms[1], "total_ms": ms[0] + ms[1]},
    )
    result.problems = question_problems(result, K)
    return result


def _questions() -> list[QuestionResult]:
    passage = "Coalition forces will resume air strikes against IS targets."
    return [
        _question(
            "q1",
            "What did coalition forces resume?",
            answerable=True,
            relevant_at=1,
            answer="Air strikes [1].",
            refused=False,
            citations=[_citation(passage, "resume air strikes", True)],
            ms=(10, 100),
        ),
        _question(
            "q2",
            "Who resumed?",
            answerable=True,
            relevant_at=7,
            answer="REFUSED",
            refused=True,
            citations=[],
            ms=(20, 0),
        ),
        _question(
            "q3",
            "What is the capital of Libya?",
            answerable=False,
            relevant_at=None,
            answer="Tripoli [1].",
            refused=False,
            citations=[_citation("Libya is far away.", "", False)],
            ms=(30, 200),
        ),
        _question(
            "q4", HOSTILE, answerable=False, relevant_at=None, answer="REFUSED", refused=True, citations=[], ms=(40, 0)
        ),
    ]


def _document(tmp_path: Path, questions: list[QuestionResult], gates: tuple[Gate, ...] = ()) -> dict:
    path = tmp_path / "set.jsonl"
    path.write_text("{}\n")
    setup = {"index": "temporary", "chunks": 10, "generator": "extractive", "seconds": 1.0}
    return results_document(questions, RunSpec(path, K, Path("docs"), gates), setup)


def test_run_metrics_by_hand(tmp_path: Path) -> None:
    doc = _document(tmp_path, _questions(), (Gate.parse("hit@5=0.9"), Gate.parse("refusal_precision=0.5")))
    m = doc["metrics"]
    assert (m["hit@1"], m["hit@5"], m["hit@10"]) == (0.5, 0.5, 1.0)  # q1 at rank 1, q2 at rank 7
    assert m["mrr"] == pytest.approx((1 + 1 / 7) / 2)
    assert m["ndcg@10"] == pytest.approx((1 + 1 / 3) / 2)  # q2: 1/log2(8) = 1/3
    assert (m["exact_match"], m["f1"], m["containment"]) == (0.5, 0.5, 0.5)  # q1 right, q2 refused
    assert m["citation_precision"] == 1.0 and doc["measured"]["citation_precision"] == 1  # only q1 has evidence
    assert m["citation_support"] == 0.5 and doc["measured"]["citation_support"] == 2  # q1 supported, q3 not
    assert (m["refusal_precision"], m["refusal_recall"]) == (0.5, 0.5)  # refused q2, q4; unanswerable q3, q4
    # total ms 20, 40, 110, 230: p50 = (40 + 110) / 2; p95 at position 2.85 = 110 + 0.85·120
    assert (m["total_ms_p50"], m["total_ms_p95"]) == (75.0, 212.0)
    assert doc["hit_curve"] == [0.5] * 6 + [1.0] * 4
    assert doc["counts"] == {
        "questions": 4,
        "answerable": 2,
        "unanswerable": 2,
        "follow_ups": 0,
        "with_evidence": 2,
        "failed": 2,
    }
    assert [g["passed"] for g in doc["gates"]] == [False, True]
    problems = {q["id"]: q["problems"] for q in doc["questions"]}
    assert problems == {
        "q1": [],
        "q2": [
            "evidence not in the 5 passages the answer used (first at rank 7)",
            "refused an answerable question",
        ],
        "q3": ["answered an unanswerable question", "1 citation(s) not supported by their quote"],
        "q4": [],
    }


def test_summary_markdown(tmp_path: Path) -> None:
    text = summary_markdown(_document(tmp_path, _questions(), (Gate.parse("hit@5=0.9"),)))
    assert "| `hit@5` | 0.500 | 2 |" in text
    assert "| `total_ms_p50` | 75.0 | 4 |" in text
    assert "## Gates: FAILED" in text and "- FAIL: `hit@5` ≥ 0.9 (0.500 < 0.9)" in text
    assert "## Failures: 2 of 4 questions" in text
    assert "- `q3`: answered an unanswerable question; 1 citation(s) not supported by their quote" in text


def test_unmeasured_metrics_are_null_and_dashes_and_fail_gates(tmp_path: Path) -> None:
    doc = _document(tmp_path, _questions()[:1], (Gate.parse("refusal_recall=1"),))
    assert doc["metrics"]["refusal_recall"] is None and doc["metrics"]["refusal_precision"] is None
    assert '"refusal_recall": null' in json.dumps(doc)
    assert "| `refusal_recall` | — | 0 |" in summary_markdown(doc)
    assert doc["gates"][0]["passed"] is False


def test_html_is_escaped_self_contained_and_failures_first(tmp_path: Path) -> None:
    page = render_html(_document(tmp_path, _questions()))
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#x27;x&#x27; &quot;y&quot;" in page
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page)
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 2
    assert all(base64.b64decode(image).startswith(b"\x89PNG") for image in images)
    order = [page.index(f'id="q-{qid}"') for qid in ("q2", "q3", "q1", "q4")]
    assert order == sorted(order)


def test_citations_link_to_the_evidence_viewer_of_the_configured_server(tmp_path: Path) -> None:
    doc = _document(tmp_path, _questions())
    path = doc["questions"][0]["citations"][0]["view_url"]
    linked = render_html(doc, "http://127.0.0.1:7860/")
    assert f'<a href="http://127.0.0.1:7860{path}" target="_blank" rel="noopener">view in document</a>' in linked
    unlinked = render_html(doc)
    assert f"view: <code>{path}</code>" in unlinked and "DOCBOT_VIEW_BASE_URL" in unlinked
    assert "view: <code>" not in render_html(json.loads(json.dumps(doc).replace('"view_url"', '"old_field"')))


def test_highlight_marks_the_evidence_and_escapes_the_rest() -> None:
    marked = highlight("Big  <b>World</b>\n& co", "<b>world</b> &")
    assert marked == "Big  <mark>&lt;b&gt;World&lt;/b&gt;\n&amp;</mark> co"
    assert highlight("a < b", "") == "a &lt; b"


def test_write_run_and_load_results(tmp_path: Path) -> None:
    doc = _document(tmp_path, _questions())
    written = write_run(doc, tmp_path / "run")
    assert [p.name for p in written] == ["results.json", "summary.md", "report.html"]
    assert load_results(tmp_path / "run") == json.loads(json.dumps(doc))
    assert load_results(tmp_path / "run" / "results.json")["counts"]["questions"] == 4


def test_metric_delta_regression_rules() -> None:
    assert MetricDelta("hit@5", 0.5, 0.49, True).regression
    assert not MetricDelta("hit@5", 0.5, 0.5, True).regression
    assert not MetricDelta("hit@5", None, 0.1, True).regression and MetricDelta("hit@5", None, 0.1, True).delta is None
    assert not MetricDelta("total_ms_p50", 100.0, 109.0, False).regression  # within the 10 % tolerance
    assert MetricDelta("total_ms_p50", 100.0, 111.0, False).regression
    assert MetricDelta("hit@5", 0.25, 0.75, True).delta == 0.5


def test_compare_marks_regressions_and_newly_failing(tmp_path: Path) -> None:
    before = _document(tmp_path, _questions())
    worse = _questions()
    worse[0] = _question(
        "q1",
        "What did coalition forces resume?",
        answerable=True,
        relevant_at=None,
        answer="Air strikes [1].",
        refused=False,
        citations=[],
        ms=(10, 100),
    )
    after = _document(tmp_path, worse)
    after["run"]["k"] = 3
    comparison = compare_runs(before, after, ("old", "new"))
    regressed = {d.metric for d in comparison.regressions}
    assert {"hit@1", "hit@5", "mrr", "ndcg@10"} <= regressed and "f1" not in regressed
    assert comparison.newly_failing == ["q1"] and comparison.fixed == []
    assert comparison.notes == ["k differs: 5 → 3"]
    text = compare_markdown(comparison)
    assert "| `hit@1` | 0.500 | 0.000 | -0.500 | **regression** |" in text
    assert "| `f1` | 0.500 | 0.500 | +0.000 |  |" in text
    assert "Newly failing in B: q1" in text and "Note: k differs: 5 → 3" in text
