"""Retrieval latency at a given index size: hybrid (dense + BM25) against dense only.

The index is built by docbot's own ``Indexer`` into a real Chroma store and BM25 files; only the
chunk vectors come from the :class:`~bench.vectors.VectorCache` where it has them. The index is kept
(``bench/.cache/index-<chunks>``) with a stamp of the corpus and settings it was built from: a later run with
the same stamp reuses it, the indexer checking every file against the store incrementally, so that measuring
at 100k chunks does not re-insert 700k vectors each time. Queries are embedded live, as in use, and each query is
run both ways in turn so both see the same machine.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app import build
from bench.corpus import CorpusInfo
from bench.machine import load_average
from bench.vectors import CachedEmbedder, VectorCache
from bot.config import Settings
from index.embeddings import Embedder, resolve_model, resolve_precision
from index.pipeline import IndexReport
from index.retriever import SENTENCES_PER_CHUNK, HybridRetriever
from index.store import VectorStore

WARM_UP = 5
#: Seconds between progress lines while an index is built (filling the vector cache can take minutes).
PROGRESS_EVERY_S = 30.0
#: The file in a kept index's data directory naming what it was built from.
STAMP = "bench-index.json"


@dataclass
class Latency:
    p50_ms: float
    p95_ms: float
    mean_ms: float

    @classmethod
    def of(cls, seconds: list[float]) -> Latency:
        ms = sorted(s * 1000 for s in seconds)
        p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
        return cls(round(statistics.median(ms), 2), round(p95, 2), round(statistics.fmean(ms), 2))


@dataclass
class RetrievalRun:
    chunks: int
    queries: int
    build_seconds: float  # the build that made the index (an earlier run's, when reused)
    vectors_computed: int  # chunk vectors the cache did not have and the build had to embed
    hybrid: Latency
    dense: Latency
    query_embedding: Latency  # the part of each search spent embedding the question
    load_average: tuple[float, ...] = ()
    parts: SearchParts | None = None
    index_reused: bool = False  # built by an earlier run from the same corpus and settings (see ``kept_index``)


@dataclass
class SearchParts:
    """Where a hybrid search's time goes, each part timed on its own for every question (in turn, same machine)."""

    #: the question through SentenceTransformer.encode, as docbot embedded it before (baseline of ``embedding``)
    embedding_encode: Latency
    embedding: Latency  # the question as docbot embeds it now (index.embeddings.Embedder.encode, one text)
    chroma_nearest: Latency  # Chroma's HNSW query for the fetch_k nearest chunks: ids and distances only
    sentence_nearest: Latency  # the same over the stored sentences, with their chunk ids (small-to-big)
    fetch: Latency  # reading the texts and metadata of the 2 k best chunks from Chroma
    lexical_side: Latency  # search(dense=False): BM25 top fetch_k, fusion and fetching the passages
    encode_over_embedding: float  # embedding_encode p50 / embedding p50: what one-text embedding saves


def build_index(
    corpus: Path, settings: Settings, cache: VectorCache, *, rebuild: bool = True
) -> tuple[IndexReport, int]:
    """docbot's indexer over ``corpus``, vectors from the cache where it has them; (its report, vectors computed).
    ``rebuild=False`` indexes incrementally into what ``settings.data_dir`` already holds."""
    embedder = CachedEmbedder(settings, cache)
    indexer = build(settings, embedder=embedder, rebuild=rebuild).indexer
    last = time.monotonic()

    def progress(done: int, total: int, chunks: int) -> None:
        nonlocal last
        if time.monotonic() - last >= PROGRESS_EVERY_S or done == total:
            last = time.monotonic()
            print(f"  indexed {done}/{total} files, {chunks} chunks, {embedder.computed} embedded anew", flush=True)

    report = indexer.run([corpus], progress=progress)
    cache.save()
    if report.failed:
        raise RuntimeError(f"the benchmark corpus failed to index: {report.summary()}")
    return report, embedder.computed


@dataclass
class KeptIndex:
    build_seconds: float  # the build that made the index
    vectors_computed: int
    reused: bool  # made by an earlier run; this one only checked it


def index_stamp(info: CorpusInfo, settings: Settings) -> dict[str, Any]:
    """What decides an index's content besides the files (which the indexer checks itself)."""
    return {
        "corpus": {"files": info.files, "chunks": info.chunks, "characters": info.characters},
        "embedding_model": resolve_model(settings.embedding_model)[1],
        "embed_precision": resolve_precision(settings.embed_precision),
        "chunk_size": settings.chunk_size,
        "chunk_overlap": settings.chunk_overlap,
        "collection": settings.collection,
    }


def kept_index(info: CorpusInfo, settings: Settings, cache: VectorCache, *, fresh: bool = False) -> KeptIndex:
    """docbot's index of ``info``'s corpus in ``settings.data_dir``: reused when its stamp matches (and ``fresh``
    is not asked for), else built anew and stamped. The stamp is written only after a whole build, so an
    interrupted one is rebuilt."""
    stamp_file = settings.data_dir / STAMP
    wanted = index_stamp(info, settings)
    stamp: dict[str, Any] = json.loads(stamp_file.read_text()) if stamp_file.is_file() else {}
    if not fresh and stamp.get("built_from") == wanted:
        print(f"  reusing the index in {settings.data_dir} (built {stamp['built']}); checking it", flush=True)
        checked, _ = build_index(info.folder, settings, cache, rebuild=False)
        if checked.changed:  # files changed under the stamp: its build time no longer describes the index
            raise RuntimeError(
                f"the kept index in {settings.data_dir} did not match its corpus ({checked.summary()}); "
                "it is up to date now, but run again with --fresh-index to time a whole build"
            )
        return KeptIndex(stamp["build_seconds"], stamp["vectors_computed"], reused=True)
    stamp_file.unlink(missing_ok=True)
    report, computed = build_index(info.folder, settings, cache)
    built = KeptIndex(round(report.seconds, 2), computed, reused=False)
    stamp = {
        "built_from": wanted,
        "built": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "build_seconds": built.build_seconds,
        "vectors_computed": computed,
    }
    stamp_file.write_text(json.dumps(stamp, indent=2) + "\n")
    return built


def _clock(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def measure(
    info: CorpusInfo, settings: Settings, cache: VectorCache, questions: list[str], *, fresh: bool = False
) -> RetrievalRun:
    before = load_average()
    kept = kept_index(info, settings, cache, fresh=fresh)
    services = build(settings)
    embedder, retriever = services.embedder, services.retriever
    for question in questions[:WARM_UP]:
        retriever.search(question)
        retriever.search(question, lexical=False)
    hybrid: list[float] = []
    dense: list[float] = []
    embed: list[float] = []
    for question in questions:
        hybrid.append(_clock(lambda q=question: retriever.search(q)))
        dense.append(_clock(lambda q=question: retriever.search(q, lexical=False)))
        embed.append(_clock(lambda q=question: embedder.encode_queries([q])))
    return RetrievalRun(
        chunks=info.chunks,
        queries=len(questions),
        build_seconds=kept.build_seconds,
        vectors_computed=kept.vectors_computed,
        hybrid=Latency.of(hybrid),
        dense=Latency.of(dense),
        query_embedding=Latency.of(embed),
        load_average=(*before, *load_average()),
        parts=search_parts(services.embedder, services.store, retriever, questions),
        index_reused=kept.reused,
    )


def measure_alone(
    cache_folder: Path, info: CorpusInfo, settings: Settings, questions: list[str], fresh: bool = False
) -> RetrievalRun:
    """:func:`measure` with the vector cache read from ``cache_folder`` (and what it adds saved there): for a
    process of its own."""
    cache = VectorCache(cache_folder)
    try:
        return measure(info, settings, cache, questions, fresh=fresh)
    finally:
        cache.save()


def search_parts(
    embedder: Embedder, store: VectorStore, retriever: HybridRetriever, questions: list[str]
) -> SearchParts:
    """Each part of a hybrid search timed alone, every question through all parts in turn."""
    from sentence_transformers import SentenceTransformer

    model: SentenceTransformer = embedder._model  # the library's own path, the baseline
    settings = retriever.settings
    fetch, window = max(settings.fetch_k, settings.k), 2 * settings.k
    names = ("encode", "embed", "nearest", "sentences", "fetch", "lexical")
    times: dict[str, list[float]] = {name: [] for name in names}
    for question in questions:
        times["encode"].append(
            _clock(lambda q=question: model.encode([q], normalize_embeddings=True, convert_to_numpy=True))
        )
        vector = embedder.encode_queries([question])[0]
        times["embed"].append(_clock(lambda q=question: embedder.encode_queries([q])))
        ids = [i for i, _ in store.nearest(vector, fetch)][:window]
        times["nearest"].append(_clock(lambda v=vector: store.nearest(v, fetch)))
        times["sentences"].append(_clock(lambda v=vector: store.sentence_chunks(v, SENTENCES_PER_CHUNK * fetch)))
        times["fetch"].append(_clock(lambda i=ids: store.get(i)))
        times["lexical"].append(_clock(lambda q=question: retriever.search(q, dense=False)))
    encode, embed = Latency.of(times["encode"]), Latency.of(times["embed"])
    return SearchParts(
        embedding_encode=encode,
        embedding=embed,
        chroma_nearest=Latency.of(times["nearest"]),
        sentence_nearest=Latency.of(times["sentences"]),
        fetch=Latency.of(times["fetch"]),
        lexical_side=Latency.of(times["lexical"]),
        encode_over_embedding=round(encode.p50_ms / embed.p50_ms, 2),
    )
