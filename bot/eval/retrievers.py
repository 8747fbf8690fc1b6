"""``docbot eval --retrievers hybrid,dense,bm25``: the retrieval metrics of several retrievers in one run.

Each retriever ranks the query the bot used for every question with evidence, as deep as the run ranks; the
metrics are the run's retrieval metrics (hit@k, MRR, nDCG), so the rows compare directly with each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from bot.eval.metrics import HIT_KS, NDCG_K, contains_evidence, mean, retrieval_scores

if TYPE_CHECKING:
    from index.retriever import HybridRetriever

#: Name → which sides of the index the retriever uses.
RETRIEVERS: dict[str, dict[str, bool]] = {
    "hybrid": {"dense": True, "lexical": True},
    "dense": {"dense": True, "lexical": False},
    "bm25": {"dense": False, "lexical": True},
}
RETRIEVAL_METRICS = (*(f"hit@{k}" for k in HIT_KS), "mrr", f"ndcg@{NDCG_K}")


class RetrieversError(ValueError):
    """A ``--retrievers`` list the CLI cannot use; the message says what it takes."""


def parse_retrievers(text: str) -> tuple[str, ...]:
    """``"hybrid,dense"`` → ("hybrid", "dense"); a clear error for a name that is not one."""
    names = tuple(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    unknown = [name for name in names if name not in RETRIEVERS]
    if unknown or not names:
        raise RetrieversError(f"--retrievers {text!r}: expected a comma-separated list of {', '.join(RETRIEVERS)}")
    return names


def compare_retrievers(
    retriever: HybridRetriever, queries: Sequence[tuple[str, str]], names: Sequence[str], depth: int
) -> dict[str, dict[str, Any]]:
    """For each retriever: its retrieval metrics over ``queries`` ((query, evidence) pairs) and their count."""
    compared: dict[str, dict[str, Any]] = {}
    for name in names:
        rows = []
        for query, evidence in queries:
            passages = retriever.search(query, depth, **RETRIEVERS[name]).passages
            rows.append(retrieval_scores([contains_evidence(p.text, evidence) for p in passages]))
        compared[name] = {"questions": len(rows), **{m: mean([row[m] for row in rows]) for m in RETRIEVAL_METRICS}}
    return compared


def retrievers_markdown(compared: dict[str, dict[str, Any]]) -> list[str]:
    """The side-by-side table of the summary (no lines when the run compared no retrievers)."""
    if not compared:
        return []
    lines = [
        "## Retrievers",
        "",
        "| retriever | questions | " + " | ".join(f"`{m}`" for m in RETRIEVAL_METRICS) + " |",
        "|---|---:|" + "---:|" * len(RETRIEVAL_METRICS),
    ]
    for name, row in compared.items():
        values = " | ".join("—" if row[m] is None else f"{row[m]:.3f}" for m in RETRIEVAL_METRICS)
        lines.append(f"| {name} | {row['questions']} | {values} |")
    return lines
