"""Results → ``bench/results/*.json`` and the Markdown page ``docs/benchmarks.md``."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Hand-written findings (profiles, what was tried), pasted under "Where the time goes".
ANALYSIS = Path(__file__).with_name("analysis.md")


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    label: str
    at_least: bool
    bound: float

    def met(self, value: float) -> bool:
        return value >= self.bound if self.at_least else value <= self.bound

    def describe(self) -> str:
        return f"{'≥' if self.at_least else '≤'} {self.bound:g}"


TARGETS = (
    Target("docbot_over_raw", "docbot index speed ÷ raw `encode` speed", True, 0.9),
    Target("langchain_over_docbot", "LangChain recipe time ÷ docbot time", True, 1.3),
    Target("rerun_fraction", "unchanged re-run time ÷ first run time", False, 0.05),
)


def indexing_ratios(runs: dict[str, dict[str, Any]], clock: str = "seconds") -> dict[str, float]:
    """The target figures from wall time (``seconds``) or from CPU time (``cpu_seconds``)."""
    docbot, langchain = runs["docbot"], runs["langchain"]
    per_chunk = {name: run[clock] / run["chunks"] for name, run in runs.items()}
    return {
        "docbot_over_raw": round(per_chunk["raw"] / per_chunk["docbot"], 3),
        "langchain_over_docbot": round(langchain[clock] / docbot[clock], 3),
        "rerun_fraction": round(docbot["rerun_seconds"] / docbot["seconds"], 4),
    }


def write_json(folder: Path, name: str, payload: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def _table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return [*lines, ""]


def _n(chunks: int) -> str:
    return f"{chunks // 1000}k" if chunks >= 1000 and chunks % 1000 == 0 else str(chunks)


def _machine(machine: dict[str, Any]) -> list[str]:
    versions = machine["versions"]
    lines = ["## Machine", ""]
    lines += _table(
        ["cores", "memory", "CPU", "load average at start (1, 5, 15 min)"],
        [[machine["cores"], f"{machine['memory_gib']} GiB", machine["cpu"], machine["load_average_at_start"]]],
    )
    lines += _table(list(versions), [[versions[name] or "—" for name in versions]])
    return lines


def _indexing(indexing: list[dict[str, Any]]) -> list[str]:
    lines = [
        "## Indexing",
        "",
        "Same corpus, same machine, one fresh process each. Time is the work only: model loading is shown apart. "
        "`raw` is `SentenceTransformer.encode` (batch 32) over the exact chunk texts docbot makes, at docbot's "
        "precision; `langchain` is `RecursiveCharacterTextSplitter` + `Chroma.from_documents` with "
        "`HuggingFaceEmbeddings` on the same bundled model (float32, its only choice). CPU seconds above 2× wall "
        "seconds, or load averages above 2, mean the machine was shared while measuring.",
        "",
    ]
    for size in indexing:
        runs = size["runs"]
        lines += [f"### {_n(size['chunks'])} chunks ({size['files']} files)", ""]
        lines += _table(
            [
                "way",
                "precision",
                "chunks",
                "seconds",
                "chunks/s",
                "CPU s",
                "model load s",
                "peak RSS MiB",
                "load avg before → after",
            ],
            [
                [
                    f"`{method}`",
                    run.get("precision", "float32"),
                    run["chunks"],
                    f"{run['seconds']:.1f}",
                    f"{run['chunks'] / run['seconds']:.1f}",
                    f"{run['cpu_seconds']:.1f}",
                    f"{run['load_seconds']:.1f}",
                    f"{run['peak_rss_mib']:.0f}",
                    f"{run['load_average'][0]} → {run['load_average'][3]}",
                ]
                for method, run in runs.items()
            ],
        )
        wall, cpu = size["ratios"], size["cpu_ratios"]
        lines += _table(
            ["figure", "from wall time", "from CPU time", "target", "met (wall)"],
            [
                [t.label, wall[t.name], cpu[t.name], t.describe(), "yes" if t.met(wall[t.name]) else "**no**"]
                for t in TARGETS
            ],
        )
        lines += [f"Unchanged re-run: {runs['docbot']['rerun_seconds']:.2f} s.", ""]
    return lines


def _retrieval(retrieval: list[dict[str, Any]]) -> list[str]:
    lines = [
        "## Retrieval latency",
        "",
        "`HybridRetriever.search` (dense + BM25, fused) against `search(query, lexical=False)` (dense only), "
        "each question both ways in turn; every search embeds its question live. The index is built by "
        "docbot's `Indexer` into a real Chroma store and BM25 files, with chunk vectors reused from "
        "`bench/.cache/` where present; the index itself is kept there too and reused by a later run of the same "
        "corpus and settings (`--fresh-index` rebuilds it), its build time then being the earlier run's.",
        "",
    ]
    lines += _table(
        [
            "chunks",
            "questions",
            "hybrid p50 ms",
            "hybrid p95 ms",
            "dense p50 ms",
            "dense p95 ms",
            "of which question embedding p50 ms",
            "index build s",
            "vectors embedded for the build",
        ],
        [
            [
                _n(r["chunks"]),
                r["queries"],
                r["hybrid"]["p50_ms"],
                r["hybrid"]["p95_ms"],
                r["dense"]["p50_ms"],
                r["dense"]["p95_ms"],
                r["query_embedding"]["p50_ms"],
                f"{r['build_seconds']} (an earlier run's)" if r.get("index_reused") else r["build_seconds"],
                r["vectors_computed"],
            ]
            for r in retrieval
        ],
    )
    parted = [r for r in retrieval if r.get("parts")]
    if parted:
        lines += [
            "",
            "Where a hybrid search's time goes: each part timed alone for every question, in turn (p50 ms). "
            "The question embedding is docbot's question path (`query_engine`: ONNX Runtime by default) against "
            "SentenceTransformer.`encode` (how docbot embedded a question before), measured in the same loop; the "
            "sentences' query is the small-to-big ranking's nearest stored sentences; the BM25 side is "
            "`search(dense=False)`: BM25, fusion and reading the passages.",
            "",
        ]
        lines += _table(
            [
                "chunks",
                "question embedding",
                "same through `encode`",
                "`encode` ÷ docbot",
                "Chroma HNSW query",
                "sentences' HNSW query",
                "reading 2k passages",
                "BM25 side",
            ],
            [
                [
                    _n(r["chunks"]),
                    r["parts"]["embedding"]["p50_ms"],
                    r["parts"]["embedding_encode"]["p50_ms"],
                    r["parts"]["encode_over_embedding"],
                    r["parts"]["chroma_nearest"]["p50_ms"],
                    r["parts"].get("sentence_nearest", {}).get("p50_ms", "—"),  # not in runs before 2026-11-29
                    r["parts"]["fetch"]["p50_ms"],
                    r["parts"]["lexical_side"]["p50_ms"],
                ]
                for r in parted
            ],
        )
    return lines


def _answering(answering: dict[str, Any]) -> list[str]:
    lines = ["## Answering", ""]
    if "error" in answering:
        return [*lines, f"Not measured in this run: `{answering['error'][:300]}`.", ""]
    ask, api = answering["ask"], answering["api"]
    lines += [
        f"`Bot.ask` in-process, generator `{ask['generator']}`, {_n(ask['chunks'])} chunks, {ask['questions']} "
        f"questions ({ask['refused']} refused as not covered): p50 {ask['ask']['p50_ms']} ms, "
        f"p95 {ask['ask']['p95_ms']} ms.",
        "",
    ]
    if ask.get("ask_embedding_sentences"):
        lines += [
            f"The same questions in turn with every passage sentence and the question embedded again at question time "
            f"(as before sentence vectors were stored at index time): p50 {ask['ask_embedding_sentences']['p50_ms']} "
            f"ms, p95 {ask['ask_embedding_sentences']['p95_ms']} ms: stored sentence vectors answer "
            f"**{ask['speed_up']}x** as fast.",
            "",
        ]
    lines += [
        f"`POST /api/ask` on `python app.py` (loopback), {api['clients']} concurrent clients, {api['requests']} "
        f"requests in {api['seconds']} s over {_n(api['chunks'])} chunks: **{api['requests_per_s']} requests/s**, "
        f"latency p50 {api['latency']['p50_ms']} ms, p95 {api['latency']['p95_ms']} ms, {api['errors']} errors; "
        f"server peak memory (VmHWM) {api['server_peak_rss_mib']:.0f} MiB.",
        "",
    ]
    return lines


def replicas_section(replicas: dict[str, Any]) -> list[str]:
    lines = ["## Replicas", ""]
    if "error" in replicas:
        return [*lines, f"Not measured in this run: `{replicas['error'][:300]}`.", ""]
    one, two = replicas["one"], replicas["two"]
    lines += [
        f"`POST /api/ask` from {one['clients']} concurrent clients against `docbot serve` replicas on this machine "
        f"(loopback), as docs/deploy.md deploys them: one Chroma server holding the {_n(replicas['chunks'])}-chunk "
        "index, each replica with its own data directory, one shared state database; client n asks replica n mod "
        "the number of replicas. Both rows in the same run, the second replica idle during the first row.",
        "",
    ]
    lines += _table(
        ["replicas", "requests", "seconds", "answers/s", "errors", "p50 ms", "p95 ms", "load avg before → after"],
        [
            [
                r["replicas"],
                r["requests"],
                r["seconds"],
                f"**{r['answers_per_s']}**",
                r["errors"],
                r["latency"]["p50_ms"],
                r["latency"]["p95_ms"],
                f"{r['load_average'][0]} → {r['load_average'][3]}",
            ]
            for r in (one, two)
        ],
    )
    lines += [f"Two replicas ÷ one: **{replicas['two_over_one']}** × the answers a second.", ""]
    return lines


#: A PDF page view (drawn, not cached) should take less than this on 2 cores (issue #17).
VIEW_TARGET_MS = 300


def _views(views: dict[str, Any]) -> list[str]:
    lines = ["## PDF page views", ""]
    if "error" in views:
        return [*lines, f"Not measured in this run: `{views['error'][:300]}`.", ""]
    met = "met" if views["cold_ms"] <= VIEW_TARGET_MS else "**not met**"
    lines += [
        f"A two-column A4 page of text drawn at {views['dpi']} dpi as PNG (median of {views['pages']} pages, "
        f"{views['png_kib']} KiB each) by `PageRenderer` (`bot/view/pdf.py`): in its budgeted worker process, then "
        "from the disk cache. Baseline, measured in the same run: bare pypdfium2 opening the file and drawing the "
        f"page in-process (no PNG, no worker). Load average when done: {views['load_average']}.",
        "",
        *_table(
            ["view", "ms", "÷ bare pypdfium2"],
            [
                ["bare pypdfium2 render", views["bare_ms"], "1"],
                ["first view (starts the worker)", views["first_ms"], round(views["first_ms"] / views["bare_ms"], 1)],
                ["page not seen before", views["cold_ms"], views["cold_over_bare"]],
                ["page from the disk cache", views["cached_ms"], views["cached_over_bare"]],
            ],
        ),
        f"Target: a page view under {VIEW_TARGET_MS} ms on 2 cores: {met} ({views['cold_ms']} ms).",
        "",
        f"The boxes of a span on a page (`sentence_boxes`): {views['boxes_cold_ms']} ms the first time (the page's "
        f"text read by pypdf and pdfium and aligned), {views['boxes_cached_ms']} ms after (kept in memory).",
        "",
    ]
    return lines


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "# Benchmarks",
        "",
        f"Written by `{results['command']}` "
        f"({results['mode']} run, {results['finished']}, {results['total_seconds'] / 60:.1f} min); "
        "figures and JSON in `bench/results/`. Rerun with `make bench` (1k, 10k, 100k chunks) or "
        "`make bench-quick` (1k, 10k).",
        "",
        f"Settings: chunk size {results['settings']['chunk_size']}, overlap {results['settings']['chunk_overlap']}, "
        f"embedding batch {results['settings']['embed_batch_size']}, precision "
        f"{results['settings']['embed_precision']}, model `{results['settings']['embedding_model']}`, questions "
        f"embedded by {results['settings'].get('query_engine', 'torch')}.",
        "",
    ]
    lines += _machine(results["machine"])
    lines += _indexing(results["indexing"])
    lines += _retrieval(results["retrieval"])
    if results.get("answering"):
        lines += _answering(results["answering"])
    if results.get("replicas"):
        lines += replicas_section(results["replicas"])
    if results.get("views"):
        lines += _views(results["views"])
    if ANALYSIS.is_file():
        lines += ["## Where the time goes", "", ANALYSIS.read_text().strip(), ""]
    return "\n".join(lines)


#: The section ``python -m bench.filters`` writes; a run of ``python -m bench`` keeps it.
FILTERS_HEADING = "## Filters"


def kept_filters_section(page: Path) -> str:
    """The filter benchmark's section of an existing page ("" when it has none)."""
    try:
        text = page.read_text()
    except OSError:
        return ""
    start = text.find(f"\n{FILTERS_HEADING}\n")
    if start < 0:
        return ""
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)].rstrip() + "\n"


def with_filters_section(page: Path, section: str) -> str:
    """The page with its filter section replaced by ``section`` (appended when it has none)."""
    text = page.read_text() if page.exists() else "# Benchmarks\n"
    old = kept_filters_section(page)
    body = text.replace(old, "") if old else text
    return body.rstrip() + "\n\n" + section.rstrip() + "\n"
