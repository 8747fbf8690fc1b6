"""Two eval runs side by side (``docbot eval compare``): each metric's change, regressions marked, the questions
newly failing or fixed, and how the runs' setups differ."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.eval.metrics import LATENCY_TOLERANCE, METRICS


@dataclass(frozen=True, slots=True)
class MetricDelta:
    metric: str
    a: float | None
    b: float | None
    higher_is_better: bool

    @property
    def delta(self) -> float | None:
        return None if self.a is None or self.b is None else self.b - self.a

    @property
    def regression(self) -> bool:
        """Worse in B: any drop of a quality metric, latency up by more than LATENCY_TOLERANCE."""
        if self.a is None or self.b is None:
            return False
        if self.higher_is_better:
            return self.b < self.a - 1e-9
        return self.b > self.a * (1 + LATENCY_TOLERANCE)


@dataclass(frozen=True, slots=True)
class Comparison:
    a: str
    b: str
    deltas: list[MetricDelta]
    newly_failing: list[str]  # ids that passed in A and fail in B
    fixed: list[str]  # ids that failed in A and pass in B
    notes: list[str]  # how the two runs differ besides their results

    @property
    def regressions(self) -> list[MetricDelta]:
        return [d for d in self.deltas if d.regression]


_SETUP_KEYS = (
    "questions_sha256",
    "k",
    "generator",
    "embedding_model",
    "reranker",
    "chunk_size",
    "chunk_overlap",
    "chunks",
)


def compare_runs(a: dict[str, Any], b: dict[str, Any], names: tuple[str, str] = ("A", "B")) -> Comparison:
    deltas = [
        MetricDelta(m.name, a["metrics"].get(m.name), b["metrics"].get(m.name), m.higher_is_better) for m in METRICS
    ]
    failing_a = {q["id"]: bool(q["problems"]) for q in a["questions"]}
    failing_b = {q["id"]: bool(q["problems"]) for q in b["questions"]}
    common = [i for i in failing_a if i in failing_b]
    notes = [
        f"{key} differs: {a['run'].get(key)} → {b['run'].get(key)}"
        for key in _SETUP_KEYS
        if a["run"].get(key) != b["run"].get(key)
    ]
    only = len(failing_a) + len(failing_b) - 2 * len(common)
    if only:
        notes.append(f"{only} question id(s) are in only one of the runs")
    return Comparison(
        a=names[0],
        b=names[1],
        deltas=deltas,
        newly_failing=[i for i in common if failing_b[i] and not failing_a[i]],
        fixed=[i for i in common if failing_a[i] and not failing_b[i]],
        notes=notes,
    )
