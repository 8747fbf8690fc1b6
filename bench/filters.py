"""What a metadata filter costs: the same questions searched with and without a filter on one index, in turn.

``python -m bench.filters --chunks 100000`` builds (or reuses) the benchmark corpus of that size (bench/corpus.py),
indexes it with docbot's own ``Indexer`` into a real Chroma store and BM25 files, then times hybrid search (dense +
BM25, fused) for each question unfiltered and under each filter, alternating, so every variant sees the same machine;
each filter twice: as docbot searches (a narrow filter scores the kept chunks' vectors directly, see
index/filter_vectors.py) and through Chroma's own ``where`` (``filter_vectors=0``), for comparison. The vectors are
random unit vectors seeded by each text (:class:`RandomEmbedder`, 384 dimensions like the bundled model): what is
measured is the search (Chroma's HNSW with and without a ``where``, BM25 with and without its mask), not the model, and
100,000 chunks index in minutes; a real model's query embedding would add the same few milliseconds to both sides and
only bring the ratio closer to 1. The first filtered search after an index change also reads the chunks' filter fields
for the BM25 mask, and the first search under a narrow filter reads the vectors of the chunks it keeps; those one-off
costs are reported on their own.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from app import build
from bench import corpus, report
from bench.machine import describe, load_average
from bench.retrieval import Latency
from bot.config import Settings
from index.chunking import Chunker
from index.filters import Filter
from index.retriever import HybridRetriever

HERE = Path(__file__).resolve().parent
#: name → filter; the corpus keeps 500 files a folder (part-000, part-001, ...), every third file plain text.
FILTERS = {
    "path: one folder of 500 files (~5% at 100k)": "path=part-001/",
    "type: plain text (~1/3)": "type=txt",
    "tag and type (~3% at 100k)": "tag=part-001,type=md",
}
WARM_UP = 5


class RandomEmbedder:
    """A unit vector a text, drawn from a generator seeded by the text: deterministic and about 100x cheaper than
    the hashing embedder (index.hashing)."""

    name = "bench/random-384"
    dimension = 384

    def encode(self, texts: list[str]) -> np.ndarray:
        rows = np.empty((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
            rows[row] = np.random.default_rng(seed).standard_normal(self.dimension)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self.encode(texts)


@dataclass
class FilterCase:
    name: str
    where: str
    filtered: Latency
    unfiltered: Latency
    chroma_where: Latency  # the same filter through Chroma's own where (filter_vectors=0)
    ratio_p50: float  # filtered median / unfiltered median
    ratio_mean: float
    chroma_where_ratio_p50: float
    first_search_seconds: float  # the first search under this filter (reads the kept chunks' vectors when narrow)
    passages_per_query: float


@dataclass
class FilterRun:
    chunks: int
    queries: int
    build_seconds: float
    mask_table_seconds: float  # the first filtered search's one-off read of the filter fields
    cases: list[FilterCase]
    load_average: tuple[float, ...] = ()


def _clock(fn: object) -> float:
    started = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - started


def measure(folder: Path, chunks: int, settings: Settings, questions: list[str]) -> FilterRun:
    before = load_average()
    services = build(settings, embedder=RandomEmbedder())
    started = time.perf_counter()
    if services.store.count() != chunks:
        report = services.indexer.run([folder])
        if report.failed:
            raise RuntimeError(f"the benchmark corpus failed to index: {report.summary()}")
    build_seconds = time.perf_counter() - started
    retriever = services.retriever
    chroma = HybridRetriever(
        settings=settings.model_copy(update={"filter_vectors": 0}), embedder=services.embedder, store=services.store
    )
    filters = {name: Filter.parse(text) for name, text in FILTERS.items()}
    empty = Filter.parse("type=none")  # builds the filter table, reads no vectors
    mask_table = _clock(lambda: retriever.search(questions[0], where=empty))
    chroma.search(questions[0], where=empty)
    first = {name: _clock(lambda w=where: retriever.search(questions[0], where=w)) for name, where in filters.items()}
    for question in questions[:WARM_UP]:
        retriever.search(question)
        for where in filters.values():
            retriever.search(question, where=where)
            chroma.search(question, where=where)
    plain: list[float] = []
    timed: dict[str, list[float]] = {name: [] for name in filters}
    by_chroma: dict[str, list[float]] = {name: [] for name in filters}
    found: dict[str, int] = dict.fromkeys(filters, 0)
    for question in questions:
        plain.append(_clock(lambda q=question: retriever.search(q)))
        for name, where in filters.items():
            started = time.perf_counter()
            found[name] += len(retriever.search(question, where=where).passages)
            timed[name].append(time.perf_counter() - started)
            by_chroma[name].append(_clock(lambda q=question, w=where: chroma.search(q, where=w)))
    unfiltered = Latency.of(plain)
    cases = [
        FilterCase(
            name,
            FILTERS[name],
            Latency.of(seconds),
            unfiltered,
            Latency.of(by_chroma[name]),
            round(statistics.median(seconds) / statistics.median(plain), 3),
            round(statistics.fmean(seconds) / statistics.fmean(plain), 3),
            round(statistics.median(by_chroma[name]) / statistics.median(plain), 3),
            round(first[name], 2),
            round(found[name] / len(questions), 2),
        )
        for name, seconds in timed.items()
    ]
    return FilterRun(
        chunks, len(questions), round(build_seconds, 1), round(mask_table, 2), cases, (*before, *load_average())
    )


def markdown(run: FilterRun) -> str:
    lines = [
        report.FILTERS_HEADING,
        "",
        "`python -m bench.filters --chunks N`: what a filter costs beside an unfiltered search on the same index "
        "(the target: at most 1.5x at 100,000 chunks).",
        "",
        f"Hybrid search at {run.chunks:,} chunks, {run.queries} questions, each searched unfiltered and under every "
        "filter in turn (random vectors: the search is measured, not the model).",
        "",
        "| filter | `--where` | filtered p50 ms | unfiltered p50 ms | ratio p50 | ratio mean | "
        "Chroma `where` p50 ms (ratio) | first search s | passages |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for case in run.cases:
        lines.append(
            f"| {case.name} | `{case.where}` | {case.filtered.p50_ms} | {case.unfiltered.p50_ms} | "
            f"{case.ratio_p50:.2f}x | {case.ratio_mean:.2f}x | {case.chroma_where.p50_ms} "
            f"({case.chroma_where_ratio_p50:.2f}x) | {case.first_search_seconds} | {case.passages_per_query} |"
        )
    lines += [
        "",
        "A narrow filter (at most 20,000 chunks) scores the vectors of the chunks it keeps directly "
        "(index/filter_vectors.py); the Chroma `where` column is the same filter through Chroma's own filtering "
        "(`DOCBOT_FILTER_VECTORS=0`), measured in the same run. The first search under a narrow filter after an "
        "index change reads the kept chunks' vectors from the store (the first search column); later ones reuse "
        "them.",
        "",
        f"The first filtered search after an index change read the chunks' filter fields for the BM25 mask once "
        f"({run.mask_table_seconds} s); later filters reuse them. Load average before and after: "
        f"{', '.join(f'{x:.2f}' for x in run.load_average)}.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.filters", description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=100_000, help="index size in chunks")
    parser.add_argument("--queries", type=int, default=50, help="questions per variant")
    parser.add_argument("--cache", type=Path, default=HERE / ".cache", help="corpora and indexes, reused")
    parser.add_argument("--results", type=Path, default=HERE / "results", help="folder for filters.json")
    parser.add_argument("--doc", type=Path, default=HERE.parent / "docs" / "benchmarks.md", help="Markdown page")
    args = parser.parse_args(argv)
    base = Settings()
    info = corpus.build_corpus(
        args.cache / "corpus" / str(args.chunks), args.chunks, Chunker(base.chunk_size, base.chunk_overlap)
    )
    settings = base.model_copy(update={"data_dir": args.cache / f"filters-{args.chunks}"})
    run = measure(info.folder, info.chunks, settings, corpus.questions(args.queries))
    path = report.write_json(args.results, "filters", {"machine": describe(), "filters": asdict(run)})
    args.doc.write_text(report.with_filters_section(args.doc, markdown(run)))
    print(markdown(run))
    print(f"wrote {path} and the {report.FILTERS_HEADING} section of {args.doc}")


if __name__ == "__main__":
    main()
