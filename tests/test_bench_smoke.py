"""The benchmark runs end to end on a tiny corpus and writes its JSON and Markdown (no timing is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: ``bench`` is not an installed package: it runs from the repository root, as ``make bench`` does.
WRITE_CORPUS = """
import sys
from pathlib import Path
from bench.corpus import build_corpus
from index.chunking import Chunker
print(build_corpus(Path(sys.argv[1]), 120, Chunker(800, 150)).chunks)
"""


def test_corpus_is_reproducible_and_sized_in_chunks(tmp_path: Path) -> None:
    folders = [tmp_path / "a", tmp_path / "b"]
    for folder in folders:
        done = subprocess.run(
            [sys.executable, "-c", WRITE_CORPUS, str(folder)], cwd=ROOT, check=True, capture_output=True, text=True
        )
        assert done.stdout.strip() == "120"
    names = [sorted(p.relative_to(folder) for p in folder.rglob("doc-*")) for folder in folders]
    assert names[0] == names[1] and len(names[0]) > 1
    assert all((folders[0] / name).read_text() == (folders[1] / name).read_text() for name in names[0])


@pytest.mark.slow
def test_quick_bench_writes_results_and_table(tmp_path: Path) -> None:
    results, doc = tmp_path / "results", tmp_path / "benchmarks.md"
    command = [sys.executable, "-m", "bench", "--quick", "--sizes", "40", "60", "--queries", "4"]
    command += ["--api-requests", "8", "--results", str(results), "--doc", str(doc), "--cache", str(tmp_path / "c")]
    subprocess.run(command, cwd=ROOT, check=True, timeout=900)

    data = json.loads((results / "quick.json").read_text())
    assert data["mode"] == "quick"
    assert {"cores", "memory_gib", "versions"} <= set(data["machine"])
    assert {"python", "torch", "chromadb", "sentence-transformers", "bm25s"} <= set(data["machine"]["versions"])
    (indexed,) = data["indexing"]
    assert indexed["chunks"] == 40
    assert set(indexed["runs"]) == {"raw", "docbot", "langchain"}
    assert indexed["runs"]["raw"]["chunks"] == indexed["runs"]["docbot"]["chunks"] == 40
    for ratios in (indexed["ratios"], indexed["cpu_ratios"]):
        assert set(ratios) == {"docbot_over_raw", "langchain_over_docbot", "rerun_fraction"}
    assert [r["chunks"] for r in data["retrieval"]] == [40, 60]
    for searched in data["retrieval"]:
        assert searched["queries"] == 4
        assert searched["hybrid"]["p50_ms"] > 0 and searched["dense"]["p95_ms"] > 0
        parts = searched["parts"]  # where a hybrid search's time goes, with its embedding baseline
        assert parts["embedding"]["p50_ms"] > 0 and parts["chroma_nearest"]["p50_ms"] > 0, parts
        assert parts["sentence_nearest"]["p50_ms"] > 0, parts  # the small-to-big ranking's own HNSW query
        assert parts["encode_over_embedding"] > 0, parts
    assert data["retrieval"][0]["vectors_computed"] == 0  # reused from the indexing run
    assert data["answering"]["api"]["requests"] == 8 and data["answering"]["api"]["errors"] == 0
    assert data["answering"]["api"]["chunks"] == 60  # answering and server memory on the largest index
    assert data["answering"]["api"]["server_peak_rss_mib"] > 100  # torch and the model alone are more
    replicas = data["replicas"]
    assert replicas["chunks"] == 60 and replicas["two_over_one"] > 0, replicas
    for run, count in ((replicas["one"], 1), (replicas["two"], 2)):
        assert run["replicas"] == count and run["requests"] == 8 and run["errors"] == 0, run
    assert data["settings"]["query_engine"] == "onnx"
    precision = data["settings"]["embed_precision"]
    assert precision in ("float32", "bfloat16")
    assert indexed["runs"]["raw"]["precision"] == indexed["runs"]["docbot"]["precision"] == precision
    assert indexed["runs"]["langchain"]["precision"] == "float32"
    assert data["answering"]["ask"]["questions"] == 4

    page = doc.read_text()
    for heading in ("## Machine", "## Indexing", "## Retrieval latency", "## Answering", "## Replicas"):
        assert heading in page
    assert f"| `docbot` | {precision} | 40 |" in page
    assert "requests/s" in page
    assert "Where a hybrid search's time goes" in page and "Chroma HNSW query" in page

    # --only retrieval measures the retrieval table again (each size in a process of its own, the kept indexes
    # only checked) and keeps the rest of the last results
    again = [sys.executable, "-m", "bench", "--quick", "--only", "retrieval", "--queries", "3"]
    again += ["--results", str(results), "--doc", str(doc), "--cache", str(tmp_path / "c")]
    subprocess.run(again, cwd=ROOT, check=True, timeout=900)
    redone = json.loads((results / "quick.json").read_text())
    measured = [(r["chunks"], r["queries"], r["index_reused"]) for r in redone["retrieval"]]
    assert measured == [(40, 3, True), (60, 3, True)]
    assert redone["indexing"] == data["indexing"] and redone["answering"] == data["answering"]
    assert "## Retrieval latency" in doc.read_text()


@pytest.mark.slow
def test_page_views_alone_join_the_last_results(tmp_path: Path) -> None:
    """``--only views`` measures the PDF page views and puts them into the mode's last results and the page."""
    results, doc = tmp_path / "results", tmp_path / "benchmarks.md"
    results.mkdir()
    (results / "full.json").write_text((ROOT / "bench" / "results" / "full.json").read_text())
    command = [sys.executable, "-m", "bench", "--only", "views", "--results", str(results)]
    subprocess.run([*command, "--doc", str(doc), "--cache", str(tmp_path / "c")], cwd=ROOT, check=True, timeout=300)

    data = json.loads((results / "full.json").read_text())
    views = data["views"]
    assert views["dpi"] == 150 and views["pages"] == 11 and views["png_kib"] > 10
    assert 0 < views["cached_ms"] < views["cold_ms"] and views["bare_ms"] > 0
    assert 0 < views["boxes_cached_ms"] < views["boxes_cold_ms"]
    assert data["retrieval"]  # the earlier figures are kept
    page = doc.read_text()
    assert "## PDF page views" in page and "## Retrieval latency" in page and "page from the disk cache" in page


def test_filter_bench_writes_its_section_and_keeps_the_page(tmp_path: Path) -> None:
    results, doc = tmp_path / "results", tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n## Retrieval latency\n\nkept\n\n## Filters\n\nold figures\n")
    command = [sys.executable, "-m", "bench.filters", "--chunks", "60", "--queries", "3"]
    command += ["--results", str(results), "--doc", str(doc), "--cache", str(tmp_path / "c")]
    subprocess.run(command, cwd=ROOT, check=True, timeout=600, capture_output=True)

    run = json.loads((results / "filters.json").read_text())["filters"]
    assert run["chunks"] == 60 and run["queries"] == 3 and len(run["cases"]) == 3
    assert all(case["filtered"]["p50_ms"] > 0 and case["ratio_p50"] > 0 for case in run["cases"])
    page = doc.read_text()
    assert "## Retrieval latency\n\nkept" in page and "old figures" not in page
    assert page.count("## Filters") == 1 and "Hybrid search at 60 chunks, 3 questions" in page


KEEP_INDEX = """
import json, sys
from pathlib import Path
from bench.corpus import build_corpus
from bench.retrieval import STAMP, kept_index
from bench.vectors import VectorCache
from bot.settings_errors import load_settings
from index.chunking import Chunker

root = Path(sys.argv[1])
base = load_settings().model_copy(update={"data_dir": root / "index-40"})
info = build_corpus(root / "corpus", 40, Chunker(base.chunk_size, base.chunk_overlap))
cache = VectorCache(root / "vectors")
runs = [kept_index(info, base, cache), kept_index(info, base, cache), kept_index(info, base, cache, fresh=True)]
other = base.model_copy(update={"chunk_overlap": base.chunk_overlap + 50})
runs.append(kept_index(info, other, cache))  # other settings: the stamp no longer matches
print(json.dumps([[r.reused, r.build_seconds] for r in runs]))
print(json.dumps(json.loads((base.data_dir / STAMP).read_text())["built_from"]))
"""


@pytest.mark.model
def test_retrieval_index_is_kept_and_reused_only_when_its_stamp_matches(tmp_path: Path) -> None:
    """The bench keeps its index with a stamp of corpus and settings; a later run reuses it only on a match."""
    done = subprocess.run(
        [sys.executable, "-c", KEEP_INDEX, str(tmp_path)], cwd=ROOT, check=True, capture_output=True, text=True
    )
    runs_line, stamp_line = done.stdout.strip().splitlines()[-2:]
    runs, stamp = json.loads(runs_line), json.loads(stamp_line)
    assert [reused for reused, _ in runs] == [False, True, False, False]
    assert runs[1][1] == runs[0][1]  # reused: the build time is the first run's
    assert "reusing the index" in done.stdout
    assert stamp["chunk_overlap"] == 200 and stamp["corpus"]["chunks"] == 40  # stamped with what built it last
