"""``python -m bench``: corpus → indexing → retrieval → answering → replicas figures → JSON + ``docs/benchmarks.md``.

Full run: indexing compared at 1k and 10k chunks, retrieval at 1k, 10k and 100k. ``--quick``: indexing
at 1k, retrieval at 1k and 10k. Answering and the server's peak memory on the largest index, ``/api/ask`` with
one and two replicas over a Chroma server (:mod:`bench.replicas`) on it, then PDF page views (cold and cached,
against bare pypdfium2). ``--sizes`` picks other corpus sizes (the smoke test uses tiny ones). ``--only views``
measures the page views alone and puts them into the last results of that mode. Corpora and chunk vectors are kept
in ``bench/.cache/`` and reused by later runs, and so are the retrieval indexes (``index-<chunks>``, stamped with
the corpus and settings they were built from; ``--fresh-index`` rebuilds them).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from bench import answering, corpus, indexing, replicas, report, retrieval, views
from bench.machine import describe
from bench.vectors import VectorCache, absorb_index
from bot.config import Settings
from bot.settings_errors import SettingsError, load_settings
from index.chunking import Chunker
from index.embeddings import resolve_model, resolve_precision

HERE = Path(__file__).resolve().parent
FULL_SIZES = (1_000, 10_000, 100_000)
QUICK_SIZES = (1_000, 10_000)
#: A full run compares indexing at sizes up to this (embedding three times over is the slow part);
#: a quick run at its smallest size only.
FULL_INDEX_LIMIT = 10_000
API_CLIENTS = 8


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="1k and 10k chunks, indexing compared at the smallest size only"
    )
    parser.add_argument("--sizes", type=int, nargs="+", help="corpus sizes in chunks (default: by mode)")
    parser.add_argument("--queries", type=int, default=200, help="questions timed per index size")
    parser.add_argument("--api-requests", type=int, default=160, help="requests sent to /api/ask in all")
    parser.add_argument("--results", type=Path, default=HERE / "results", help="folder for the JSON results")
    parser.add_argument("--doc", type=Path, default=HERE.parent / "docs" / "benchmarks.md", help="Markdown page")
    parser.add_argument("--cache", type=Path, default=HERE / ".cache", help="corpora and chunk vectors, reused")
    parser.add_argument(
        "--fresh-index", action="store_true", help="rebuild the kept retrieval indexes even where they match"
    )
    parser.add_argument(
        "--only",
        choices=["retrieval", "views"],
        help="measure this part alone and merge it into the last results of the mode",
    )
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    return args


def _log(message: str) -> None:
    print(f"[bench {datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


def run(args: argparse.Namespace, work: Path, base: Settings) -> dict[str, Any]:
    started = time.perf_counter()
    mode = "quick" if args.quick else "full"
    sizes = sorted(set(args.sizes or (QUICK_SIZES if args.quick else FULL_SIZES)))
    index_sizes = sizes[:1] if args.quick else [n for n in sizes if n <= FULL_INDEX_LIMIT] or sizes[:1]
    _, model_name = resolve_model(base.embedding_model)
    machine = describe()
    cache, corpora = _sources(args, base, sizes)
    questions = corpus.questions(args.queries)

    indexed: list[dict[str, Any]] = []
    for n in index_sizes:
        runs: dict[str, dict[str, Any]] = {}
        for method in indexing.METHODS:
            _log(f"indexing {n} chunks: {method}")
            runs[method] = asdict(indexing.measure(method, corpora[n].folder, work / f"index-{n}"))
        absorb_index(cache, indexing.worker_settings(work / f"index-{n}"))
        shutil.rmtree(work / f"index-{n}")
        indexed.append(
            {
                "chunks": corpora[n].chunks,
                "files": corpora[n].files,
                "runs": runs,
                "ratios": report.indexing_ratios(runs),
                "cpu_ratios": report.indexing_ratios(runs, "cpu_seconds"),
            }
        )

    searched = _retrieval(args, base, cache, corpora, questions)

    answer_size = sizes[-1]
    _log(f"answering at {answer_size} chunks")
    answer_index = args.cache / f"index-{answer_size}"
    answered = _answering(base, answer_index, questions, corpora[answer_size].chunks, args)
    _log(f"one and two replicas at {answer_size} chunks")
    replicated = _replicas(work, answer_index, questions, corpora[answer_size].chunks, args)
    viewed = _views(work, base)
    return {
        "mode": mode,
        "command": " ".join(["python -m bench", *args.argv]),
        "finished": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "total_seconds": round(time.perf_counter() - started, 1),
        "machine": machine,
        "settings": {
            "chunk_size": base.chunk_size,
            "chunk_overlap": base.chunk_overlap,
            "embed_batch_size": base.embed_batch_size,
            "embed_precision": resolve_precision(base.embed_precision),
            "query_engine": base.query_engine,
            "embedding_model": model_name,
        },
        "corpora": {str(n): asdict(info) | {"folder": str(info.folder)} for n, info in corpora.items()},
        "indexing": indexed,
        "retrieval": searched,
        "answering": answered,
        "replicas": replicated,
        "views": viewed,
    }


def _sources(
    args: argparse.Namespace, base: Settings, sizes: list[int]
) -> tuple[VectorCache, dict[int, corpus.CorpusInfo]]:
    """The model's vector cache and the corpus of each size (made once, then reused from ``args.cache``)."""
    _, model_name = resolve_model(base.embedding_model)
    cache = VectorCache(args.cache / "vectors" / model_name.replace("/", "--"))
    chunker = Chunker(base.chunk_size, base.chunk_overlap)
    return cache, {n: corpus.build_corpus(args.cache / "corpus" / str(n), n, chunker) for n in sizes}


def _retrieval(
    args: argparse.Namespace,
    base: Settings,
    cache: VectorCache,
    corpora: dict[int, corpus.CorpusInfo],
    questions: list[str],
) -> list[dict[str, Any]]:
    """Each size's retrieval figures, measured in a fresh process of its own, as a server serving that index
    alone: in this process, the models, stores and indexes of the stages before would share its memory and cores
    (at 100k, hybrid p50 16.8 ms measured here against 11.5 ms alone)."""
    cache.save()  # what the indexing stage added, for the processes below to read
    searched: list[dict[str, Any]] = []
    for n, info in sorted(corpora.items()):
        _log(f"retrieval at {n} chunks ({len(cache)} vectors cached), in a process of its own")
        settings = base.model_copy(update={"data_dir": args.cache / f"index-{n}"})
        with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as alone:
            job = alone.submit(retrieval.measure_alone, cache.folder, info, settings, questions, args.fresh_index)
            run = job.result()
        searched.append(asdict(run))
    return searched


def _answering(
    base: Settings, data_dir: Path, questions: list[str], chunks: int, args: argparse.Namespace
) -> dict[str, Any]:
    """``Bot.ask`` and ``/api/ask`` figures on the largest index; a failure is reported in the page, not fatal."""
    settings = base.model_copy(update={"data_dir": data_dir})
    per_client = max(1, args.api_requests // API_CLIENTS)
    try:
        return {
            "ask": asdict(answering.measure_answers(settings, questions, chunks)),
            "api": asdict(answering.measure_api(data_dir, questions, chunks, API_CLIENTS, per_client)),
        }
    except Exception as exc:
        _log(f"answering not measured: {exc}")
        return {"error": f"{type(exc).__name__}: {exc}"}


def _replicas(
    work: Path, index_dir: Path, questions: list[str], chunks: int, args: argparse.Namespace
) -> dict[str, Any]:
    """``/api/ask`` with one and two replicas over a Chroma server; a failure is reported in the page, not fatal."""
    per_client = max(1, args.api_requests // API_CLIENTS)
    try:
        return asdict(replicas.measure(index_dir, work / "replicas", questions, chunks, API_CLIENTS, per_client))
    except Exception as exc:
        _log(f"replicas not measured: {exc}")
        return {"error": f"{type(exc).__name__}: {exc}"}


def _views(work: Path, base: Settings) -> dict[str, Any]:
    """PDF page views at ``view_dpi``; a failure is reported in the page, not fatal."""
    _log(f"PDF page views at {base.view_dpi} dpi")
    folder = work / "views"
    folder.mkdir()
    try:
        return asdict(views.measure(folder, base))
    except Exception as exc:
        _log(f"page views not measured: {exc}")
        return {"error": f"{type(exc).__name__}: {exc}"}


def _only(args: argparse.Namespace, base: Settings) -> dict[str, Any]:
    """The last results of this mode with one part (``args.only``) measured anew."""
    mode = "quick" if args.quick else "full"
    last = args.results / f"{mode}.json"
    if not last.is_file():
        sys.exit(f"error: no {last} to add the {args.only} to: run python -m bench{' --quick' if args.quick else ''}")
    results: dict[str, Any] = json.loads(last.read_text())
    if args.only == "retrieval":
        cache, corpora = _sources(args, base, [int(n) for n in results["corpora"]])
        results["retrieval"] = _retrieval(args, base, cache, corpora, corpus.questions(args.queries))
        return results
    with tempfile.TemporaryDirectory(prefix="work-", dir=args.cache) as work:
        results["views"] = _views(Path(work), base)
    return results


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    try:
        base = load_settings()
    except SettingsError as exc:
        sys.exit("\n".join(f"error: {line}" for line in exc.lines))
    args.cache.mkdir(parents=True, exist_ok=True)
    if args.only:
        results = _only(args, base)
    else:
        with tempfile.TemporaryDirectory(prefix="work-", dir=args.cache) as work:
            results = run(args, Path(work), base)
    path = report.write_json(args.results, results["mode"], results)
    args.doc.parent.mkdir(parents=True, exist_ok=True)
    args.doc.write_text(report.markdown(results).rstrip() + "\n" + report.kept_filters_section(args.doc))
    took = "" if args.only else f" in {results['total_seconds'] / 60:.1f} min"
    _log(f"wrote {path} and {args.doc}{took}")


if __name__ == "__main__":
    main()
