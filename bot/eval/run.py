"""Question sets → metrics: run a set against the bot, gate the results, compare two runs.

A run asks every question the way a user would (follow-ups with their history), then searches the
query the bot actually used once more, ``depth = max(10, k)`` passages deep, to rank where the
evidence sits. The results are one JSON-ready dict (the ``results.json`` of a run, described in
docs/eval.md) that the Markdown and HTML reports and ``compare`` read.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast

from bot.answer.chat import Bot
from bot.answer.citations import Answer
from bot.answer.markers import strip_markers
from bot.config import Settings
from bot.eval.metrics import (
    BY_NAME,
    HIT_KS,
    METRIC_NAMES,
    METRICS,
    NDCG_K,
    PER_QUESTION,
    answer_scores,
    contains_evidence,
    first_relevant_rank,
    hit_curve,
    latency_scores,
    mean,
    refusal_scores,
    retrieval_scores,
    share,
)
from bot.eval.questions import QuestionItem
from bot.eval.report import render_html, summary_markdown
from bot.eval.retrievers import compare_retrievers
from index.pipeline import Indexer, IndexReport, Progress
from index.protocols import Retriever, Store
from index.settings import IndexSettings
from index.types import Passage

RESULTS_FORMAT = "docbot-eval/1"
S = TypeVar("S", bound=IndexSettings)


class EvalError(Exception):
    """The run cannot go ahead (no documents given or indexed)."""


class ResultsFileError(EvalError):
    """A run's results (for eval compare) cannot be read."""


class GateError(ValueError):
    """A ``--fail-under`` the CLI cannot use; the message says what it takes."""


# --- gates -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Gate:
    """``--fail-under METRIC=VALUE``: the run fails when the metric is below VALUE or was not measured."""

    metric: str
    threshold: float

    @classmethod
    def parse(cls, text: str) -> Gate:
        name, sep, value = (part.strip() for part in text.partition("="))
        if not sep or not name or not value:
            raise GateError(f"--fail-under {text!r}: expected METRIC=VALUE, e.g. hit@5=0.9")
        metric = BY_NAME.get(name)
        gateable = [m.name for m in METRICS if m.higher_is_better]
        if metric is None:
            raise GateError(f"--fail-under {text!r}: unknown metric {name!r}; one of {', '.join(gateable)}")
        if not metric.higher_is_better:
            raise GateError(f"--fail-under {text!r}: lower {name} is better, so a lower bound does not apply")
        try:
            threshold = float(value)
        except ValueError:
            raise GateError(f"--fail-under {text!r}: {value!r} is not a number") from None
        if not 0.0 <= threshold <= 1.0:
            raise GateError(f"--fail-under {text!r}: {name} lies between 0 and 1")
        return cls(name, threshold)

    def check(self, metrics: dict[str, float | None]) -> dict[str, Any]:
        value = metrics.get(self.metric)
        if value is None:
            passed, reason = False, "not measured: no question in the set it applies to"
        else:
            passed = value >= self.threshold
            reason = f"{value:.3f} {'>=' if passed else '<'} {self.threshold:g}"
        return {"metric": self.metric, "threshold": self.threshold, "value": value, "passed": passed, "reason": reason}


# --- one question ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RetrievedPassage:
    rank: int
    chunk_id: str
    source: str
    start: int
    end: int
    score: float
    relevant: bool
    preview: str


@dataclass(frozen=True, slots=True)
class CitedPassage:
    number: int
    source: str
    title: str
    page: int | None
    quote: str
    quote_start: int
    quote_end: int
    passage: str
    supported: bool
    support: float
    contains_evidence: bool
    view_url: str  # the evidence viewer's path for the quote (relative to a server's address)


@dataclass
class QuestionResult:
    id: str
    question: str
    history: list[tuple[str, str]]
    answers: list[str]
    evidence: str
    answerable: bool
    source: str | None
    query: str
    answer: str
    refused: bool
    generator: str
    notice: str | None
    citations: list[CitedPassage]
    retrieved: list[RetrievedPassage]
    evidence_rank: int | None
    scores: dict[str, float | None]
    timings: dict[str, float]
    problems: list[str] = field(default_factory=list)
    kind: str | None = None  # the question set's kind: answerable, near or off (None when the set gives none)
    why: str = ""  # why it was answered or declined (bot.answer.chat.coverage_reason)

    @property
    def scored_retrieval(self) -> bool:
        return self.answerable and bool(self.evidence)


def _preview(text: str, limit: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _retrieved(passages: list[Passage], evidence: str) -> list[RetrievedPassage]:
    return [
        RetrievedPassage(
            rank=rank,
            chunk_id=p.id,
            source=p.source,
            start=p.start,
            end=p.end,
            score=round(p.score, 6),
            relevant=contains_evidence(p.text, evidence),
            preview=_preview(p.text),
        )
        for rank, p in enumerate(passages, start=1)
    ]


def _cited(answer: Answer, evidence: str) -> list[CitedPassage]:
    return [
        CitedPassage(
            number=c.number,
            source=c.source,
            title=c.title,
            page=c.page,
            quote=c.quote,
            quote_start=c.quote_start,
            quote_end=c.quote_end,
            passage=c.passage,
            supported=c.supported,
            support=c.support,
            contains_evidence=contains_evidence(c.passage, evidence),
            view_url=c.view_url,
        )
        for c in answer.citations
    ]


def _scores(
    item: QuestionItem, answer: Answer, retrieved: list[RetrievedPassage], cited: list[CitedPassage]
) -> dict[str, float | None]:
    scores: dict[str, float | None] = dict.fromkeys(PER_QUESTION)
    if item.answerable and item.evidence:
        scores.update(retrieval_scores([p.relevant for p in retrieved]))
    if item.answerable:
        scores.update(answer_scores("" if answer.refused else strip_markers(answer.text), item.answers))
    if item.evidence:
        scores["citation_precision"] = share([c.contains_evidence for c in cited])
    scores["citation_support"] = share([c.supported for c in cited])
    return scores


def question_problems(result: QuestionResult, k: int) -> list[str]:
    """What went wrong with one question; a question with none passes."""
    problems = []
    rank = result.evidence_rank
    if result.scored_retrieval and (rank is None or rank > k):
        where = f"first at rank {rank}" if rank else f"not in the top {len(result.retrieved)}"
        problems.append(f"evidence not in the {k} passages the answer used ({where})")
    if result.answerable and result.refused:
        problems.append(
            f"refused an answerable question ({result.why})" if result.why else "refused an answerable question"
        )
    elif result.answerable and not result.scores["containment"]:
        problems.append("the answer contains no reference answer")
    if not result.answerable and not result.refused:
        problems.append(
            f"answered an unanswerable question ({result.why})" if result.why else "answered an unanswerable question"
        )
    unsupported = sum(not c.supported for c in result.citations)
    if unsupported:
        problems.append(f"{unsupported} citation(s) not supported by their quote")
    return problems


def evaluate_question(bot: Bot, item: QuestionItem, k: int, depth: int) -> QuestionResult:
    """Ask one question as a user would, then rank the passages for the query the bot used."""
    answer = bot.ask(item.question, item.history, k)
    retrieved = _retrieved(bot.retriever.search(answer.query, depth).passages, item.evidence)
    cited = _cited(answer, item.evidence)
    result = QuestionResult(
        id=item.id,
        question=item.question,
        history=item.history,
        answers=item.answers,
        evidence=item.evidence,
        answerable=item.answerable,
        source=item.source,
        kind=item.kind,
        why=answer.why,
        query=answer.query,
        answer=answer.text,
        refused=answer.refused,
        generator=answer.generator,
        notice=answer.notice,
        citations=cited,
        retrieved=retrieved,
        evidence_rank=first_relevant_rank([p.relevant for p in retrieved]),
        scores=_scores(item, answer, retrieved, cited),
        timings=answer.timings,
    )
    result.problems = question_problems(result, k)
    return result


# --- a run -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunSpec:
    questions: Path
    k: int = 5
    docs: Path | None = None
    gates: tuple[Gate, ...] = ()
    retrievers: tuple[str, ...] = ()  # compared side by side on the run's queries (bot.eval.retrievers)

    @property
    def depth(self) -> int:
        return max(NDCG_K, max(HIT_KS), self.k)


def summarise(results: list[QuestionResult], depth: int) -> tuple[dict[str, float | None], dict[str, int], list]:
    """Run metrics, how many questions each is measured over, and the hit@k curve for k = 1..depth."""
    metrics: dict[str, float | None] = {name: mean([r.scores[name] for r in results]) for name in PER_QUESTION}
    measured = {name: sum(r.scores[name] is not None for r in results) for name in PER_QUESTION}
    metrics.update(
        refusal_scores([r.refused for r in results], [r.answerable for r in results], [r.kind for r in results])
    )
    measured["refusal_precision"] = sum(r.refused for r in results)
    measured["refusal_recall"] = sum(not r.answerable for r in results)
    measured["refusal_recall_near"] = sum(not r.answerable and r.kind == "near" for r in results)
    measured["refusal_recall_off"] = sum(not r.answerable and r.kind == "off" for r in results)
    measured["answerable_refused"] = sum(r.answerable for r in results)
    metrics.update(latency_scores([r.timings for r in results]))
    measured.update({name: len(results) for name in METRIC_NAMES if name not in measured})
    relevances = [[p.relevant for p in r.retrieved] for r in results if r.scored_retrieval]
    return metrics, measured, hit_curve(relevances, depth)


def _counts(results: list[QuestionResult]) -> dict[str, int]:
    return {
        "questions": len(results),
        "answerable": sum(r.answerable for r in results),
        "unanswerable": sum(not r.answerable for r in results),
        "follow_ups": sum(bool(r.history) for r in results),
        "with_evidence": sum(r.scored_retrieval for r in results),
        "failed": sum(bool(r.problems) for r in results),
    }


def evaluate(
    bot: Bot,
    items: list[QuestionItem],
    spec: RunSpec,
    on_question: Callable[[QuestionResult], None] | None = None,
) -> dict[str, Any]:
    """Every question of the set, the run's metrics and gates: the content of ``results.json``."""
    started = time.perf_counter()
    results = []
    for item in items:
        results.append(evaluate_question(bot, item, spec.k, spec.depth))
        if on_question is not None:
            on_question(results[-1])
    settings = bot.settings
    setup = {
        "index": "temporary" if spec.docs is not None else str(settings.data_dir),
        "chunks": bot.retriever.store.count(),
        "generator": bot.generator_name,
        "embedding_model": settings.embedding_model,
        "reranker": reranker_label(settings),
        "chunk_size": settings.chunk_size,
        "chunk_overlap": settings.chunk_overlap,
        "seconds": round(time.perf_counter() - started, 1),
    }
    document = results_document(results, spec, setup)
    if spec.retrievers:
        queries = [(r.query, r.evidence) for r in results if r.scored_retrieval]
        document["retrievers"] = compare_retrievers(bot.retriever, queries, spec.retrievers, spec.depth)
    return document


def results_document(results: list[QuestionResult], spec: RunSpec, setup: dict[str, Any]) -> dict[str, Any]:
    """The content of ``results.json``: the run (spec and ``setup``), counts, metrics, gates, every question."""
    metrics, measured, curve = summarise(results, spec.depth)
    return {
        "format": RESULTS_FORMAT,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "run": {
            "questions": str(spec.questions),
            "questions_sha256": hashlib.sha256(spec.questions.read_bytes()).hexdigest(),
            "docs": None if spec.docs is None else str(spec.docs),
            "k": spec.k,
            "depth": spec.depth,
            **setup,
        },
        "counts": _counts(results),
        "metrics": metrics,
        "measured": measured,
        "hit_curve": curve,
        "gates": [gate.check(metrics) for gate in spec.gates],
        "questions": [asdict(r) for r in results],
    }


def failed_gates(results: dict[str, Any]) -> list[dict[str, Any]]:
    return [gate for gate in results["gates"] if not gate["passed"]]


def reranker_label(settings: Settings) -> str | None:
    """The reranker a run used, as its results record it (None: none)."""
    if settings.reranker_url:
        return f"{settings.reranker or 'rerank'} at {settings.reranker_url}"
    return settings.reranker or None


def with_reranker(settings: S, reranker: str | None, model: str = "") -> S:
    """``settings`` reranking with ``reranker`` (a rerank endpoint's http(s) URL, sending ``model`` as the model
    name; else a cross-encoder's folder or cached name), or without any reranker when it is None."""
    if reranker is None:
        return settings.model_copy(update={"reranker": "", "reranker_url": None})
    if reranker.startswith(("http://", "https://")):
        return settings.model_copy(update={"reranker_url": reranker, "reranker": model})
    return settings.model_copy(update={"reranker": reranker, "reranker_url": None})


def reranked_bot(bot: Bot, reranker: str, model: str = "") -> Bot:
    """``bot`` over the same index and model backend, each collection's searches reranked by ``reranker`` (and
    ``model``, as :func:`with_reranker` reads them): the second run of ``docbot eval --reranker``."""
    return Bot(with_reranker(bot.settings, reranker, model), _reranked(bot.retriever, reranker, model), bot.backend)


def _reranked(retriever: Retriever, reranker: str, model: str) -> Retriever:
    from index.fusion import FusedRetriever
    from index.retriever import HybridRetriever

    if isinstance(retriever, FusedRetriever):
        reranked = {name: _reranked(one, reranker, model) for name, one in retriever.retrievers.items()}
        return FusedRetriever(cast("dict[str, HybridRetriever]", reranked), retriever.rrf_k)
    if not isinstance(retriever, HybridRetriever):
        raise EvalError(f"--reranker: cannot rerank a {type(retriever).__name__}")
    settings = with_reranker(retriever.settings, reranker, model)
    return HybridRetriever(settings=settings, embedder=retriever.embedder, store=retriever.store)


@contextmanager
def temporary_settings(settings: Settings, docs: Path) -> Iterator[Settings]:
    """``settings`` for a run over ``docs``: a local index in a temporary folder, removed afterwards."""
    if not docs.exists():
        raise EvalError(f"--docs {docs}: no such file or folder")
    with tempfile.TemporaryDirectory(prefix="docbot-eval-") as folder:
        yield settings.model_copy(update={"data_dir": Path(folder), "chroma_url": None})


def index_for_run(indexer: Indexer, store: Store, docs: Path, progress: Progress | None = None) -> IndexReport:
    """Index ``docs`` for a run; an index left empty (nothing readable) is an :class:`EvalError`."""
    report = indexer.run([docs], progress=progress)
    if store.count() == 0:
        raise EvalError(f"nothing could be indexed from {docs}: {report.summary()}")
    return report


def write_run(results: dict[str, Any], out: Path, view_base_url: str | None = None) -> list[Path]:
    """results.json, summary.md and report.html in ``out`` (created if needed); the report's evidence links open
    the viewer of the server at ``view_base_url``."""
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "results.json": json.dumps(results, indent=2, ensure_ascii=False) + "\n",
        "summary.md": summary_markdown(results),
        "report.html": render_html(results, view_base_url),
    }
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
    return [out / name for name in files]


# --- a run read back (docbot eval compare: bot.eval.compare) -------------------------------------


def load_results(path: Path) -> dict[str, Any]:
    """A run's results, from its ``--out`` folder or its results.json."""
    file = path / "results.json" if path.is_dir() else path
    try:
        results = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultsFileError(f"{file}: not a readable results.json ({exc})") from exc
    if not isinstance(results, dict) or results.get("format") != RESULTS_FORMAT:
        raise ResultsFileError(f"{file}: not a docbot eval results file (format {RESULTS_FORMAT})")
    return results
