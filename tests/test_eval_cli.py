"""The ``docbot eval`` command end to end, in a subprocess, with the real model, index and files.

Checks that stop before anything runs (a bad file, a bad gate) use ``CliRunner`` in-process: the fast tier.

The forms from the issue: ``docbot eval QUESTIONS.jsonl --docs DIR --out DIR --fail-under METRIC=VALUE``,
``docbot eval compare RUN_A RUN_B``, ``docbot eval import-squad FILE.json``.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import Result as CliResult
from conftest import EVAL_SET, ROOT, SEEDS
from live import child_env
from typer.testing import CliRunner

from bot.cli import app
from bot.eval.metrics import METRIC_NAMES

DOCBOT = str(Path(sys.executable).with_name("docbot"))


def docbot(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = child_env()
    env["DOCBOT_DATA_DIR"] = str(workdir / "data")
    return subprocess.run(
        [DOCBOT, *args], cwd=workdir, env=env, capture_output=True, text=True, timeout=600, check=False
    )


@pytest.fixture(scope="module")
def seed_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """The seed corpus and the seed question set, as a user would run them (relative paths, gates that pass)."""
    workdir = tmp_path_factory.mktemp("eval")
    shutil.copytree(SEEDS, workdir / "seeds")
    (workdir / "tests" / "data").mkdir(parents=True)
    shutil.copy(EVAL_SET, workdir / "tests" / "data" / "seed_dev.jsonl")
    gates = ["--fail-under", "hit@5=0.9", "--fail-under", "refusal_recall=1"]
    compare = ["--retrievers", "hybrid,dense,bm25"]
    done = docbot(workdir, "eval", "tests/data/seed_dev.jsonl", "--docs", "seeds", "--out", "run", *gates, *compare)
    return workdir, done


@pytest.mark.server
def test_seed_run_writes_results_json(seed_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    workdir, done = seed_run
    assert done.returncode == 0, done.stderr
    assert "indexed seeds into a temporary index: added 1" in done.stderr
    assert not (workdir / "data" / "chroma").exists()  # the current index was not touched
    results = json.loads((workdir / "run" / "results.json").read_text())
    run = results["run"]
    assert (run["questions"], run["docs"], run["index"], run["k"], run["depth"]) == (
        "tests/data/seed_dev.jsonl",
        "seeds",
        "temporary",
        5,
        10,
    )
    assert run["generator"] == "extractive" and run["chunks"] > 0
    counts = results["counts"]
    assert {k: counts[k] for k in ("questions", "answerable", "unanswerable", "follow_ups", "with_evidence")} == {
        "questions": 8,
        "answerable": 7,
        "unanswerable": 1,
        "follow_ups": 1,
        "with_evidence": 7,
    }
    assert counts["failed"] == sum(bool(q["problems"]) for q in results["questions"])
    metrics = results["metrics"]
    assert set(metrics) == set(METRIC_NAMES) == set(results["measured"])
    assert metrics["hit@5"] == metrics["hit@10"] == 1.0
    assert metrics["refusal_precision"] == metrics["refusal_recall"] == 1.0  # dev-07 refused, nothing else
    assert metrics["containment"] == 1.0  # every extractive answer carries a reference
    assert 0 < metrics["mrr"] <= 1 and 0 < metrics["ndcg@10"] <= 1
    assert all(metrics[f"{part}_ms_p{p}"] >= 0 for part in ("retrieval", "generation", "total") for p in (50, 95))
    assert metrics["total_ms_p50"] <= metrics["total_ms_p95"]
    assert results["measured"]["hit@5"] == 7 and results["measured"]["refusal_recall"] == 1
    curve = results["hit_curve"]
    assert len(curve) == 10 and curve == sorted(curve) and curve[4] == 1.0
    assert [g["passed"] for g in results["gates"]] == [True, True]
    questions = {q["id"]: q for q in results["questions"]}
    assert list(questions) == [f"dev-0{n}" for n in range(1, 9)]
    assert questions["dev-07"]["refused"] and questions["dev-07"]["scores"]["hit@5"] is None
    follow_up = questions["dev-08"]  # "Who is the new leader of the group?" after a turn about the Islamic State
    assert follow_up["query"] != follow_up["question"] and "Islamic" in follow_up["query"]
    assert all(q["evidence_rank"] <= 5 for q in questions.values() if q["answerable"])
    assert all(c["supported"] for q in questions.values() for c in q["citations"])


@pytest.mark.server
def test_seed_run_prints_and_writes_the_summary(seed_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    workdir, done = seed_run
    summary = (workdir / "run" / "summary.md").read_text()
    assert summary in done.stdout
    assert summary.startswith("# docbot eval: seed_dev.jsonl\n")
    assert "| `hit@5` | 1.000 | 7 |" in summary
    assert "| `refusal_recall` | 1.000 | 1 |" in summary
    assert "## Gates: passed" in summary and "- pass: `hit@5` ≥ 0.9 (1.000 >= 0.9)" in summary
    retrievers = json.loads((workdir / "run" / "results.json").read_text())["retrievers"]
    assert list(retrievers) == ["hybrid", "dense", "bm25"]
    assert retrievers["hybrid"]["hit@5"] == 1.0 and all(row["questions"] == 7 for row in retrievers.values())
    assert "## Retrievers" in summary and "| hybrid | 7 | 0.857 | 0.857 | 1.000 |" in summary


@pytest.mark.server
def test_seed_run_html_report(seed_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    workdir, _ = seed_run
    page = (workdir / "run" / "report.html").read_text()
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page), "the report must fetch nothing"
    assert len(re.findall(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]+"', page)) == 2
    for line in EVAL_SET.read_text().splitlines():
        assert html.escape(json.loads(line)["question"]) in page
    # the seed text has apostrophes ("organization's"): all text is escaped, so none is left raw
    assert "organization&#x27;s" in page and "'" not in page
    assert page.count('<div class="q ') == 8


@pytest.mark.server
def test_compare_two_runs(seed_run: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path) -> None:
    workdir, _ = seed_run
    results = json.loads((workdir / "run" / "results.json").read_text())
    results["metrics"]["hit@5"] = 0.5
    results["run"]["k"] = 3
    results["questions"][0]["problems"] = ["made up for the test"]
    later = tmp_path / "later"
    later.mkdir()
    (later / "results.json").write_text(json.dumps(results))

    done = docbot(workdir, "eval", "compare", "run", str(later))
    assert done.returncode == 0, done.stderr
    assert "| `hit@5` | 1.000 | 0.500 | -0.500 | **regression** |" in done.stdout
    assert "| `hit@10` | 1.000 | 1.000 | +0.000 |  |" in done.stdout
    assert "Newly failing in B: dev-01" in done.stdout and "Note: k differs: 5 → 3" in done.stdout
    assert docbot(workdir, "eval", "compare", "run", str(later), "--fail-on-regression").returncode == 1
    same = docbot(workdir, "eval", "compare", "run", "run/results.json", "--fail-on-regression")
    assert same.returncode == 0 and "0 regression(s)" in same.stdout
    missing = docbot(workdir, "eval", "compare", "run", "nowhere")
    assert missing.returncode == 2 and "not a readable results.json" in missing.stderr


def cli(*args: str) -> CliResult:
    """``docbot ARGS`` in-process (the working directory is the test's tmp_path, no DOCBOT_* set: conftest)."""
    return CliRunner().invoke(app, list(args))


@pytest.mark.parametrize("form", [["eval"], ["eval", "run"]])
def test_a_malformed_file_stops_before_anything_runs(tmp_path: Path, form: list[str]) -> None:
    lines = EVAL_SET.read_text().splitlines()
    lines[1] = lines[1][:-1]  # line 2: JSON cut short
    lines[2] = lines[2].replace('"answerable": true', '"answerable": "yes"')
    (tmp_path / "bad.jsonl").write_text("\n".join(lines) + "\n")
    done = cli(*form, "bad.jsonl", "--docs", str(SEEDS), "--out", "run")
    assert done.exit_code == 2
    assert "error: bad.jsonl: line 2: not valid JSON" in done.stderr
    assert "error: bad.jsonl: line 3: answerable: input should be a valid boolean" in done.stderr
    assert "indexed" not in done.stderr and not (tmp_path / "run").exists()


def test_an_unknown_retriever_stops_before_anything_runs(tmp_path: Path) -> None:
    done = docbot(tmp_path, "eval", str(EVAL_SET), "--docs", str(SEEDS), "--out", "run", "--retrievers", "hybrid,x")
    assert done.returncode == 2 and "expected a comma-separated list of hybrid, dense, bm25" in done.stderr
    assert not (tmp_path / "run").exists()


def test_a_bad_gate_stops_before_anything_runs(tmp_path: Path) -> None:
    done = cli("eval", str(EVAL_SET), "--docs", str(SEEDS), "--out", "run", "--fail-under", "hit@4=1")
    assert done.exit_code == 2 and "unknown metric 'hit@4'" in done.stderr
    assert not (tmp_path / "run").exists()


def test_docs_and_a_collection_together_stop_before_anything_runs(tmp_path: Path) -> None:
    done = cli("eval", str(EVAL_SET), "--docs", str(SEEDS), "--collection", "hr", "--out", "run")
    assert done.exit_code == 2 and "--docs" in done.stderr and "--collection" in done.stderr
    assert "indexed" not in done.stderr and not (tmp_path / "run").exists()


@pytest.mark.server
def test_import_squad_then_eval_the_current_index_with_a_failing_gate(tmp_path: Path) -> None:
    imported = docbot(tmp_path, "eval", "import-squad", str(ROOT / "tests" / "data" / "squad_v2.json"), "--out", "sq")
    assert imported.returncode == 0, imported.stderr
    assert "wrote 1 document(s) and 4 question(s) (2 unanswerable)" in imported.stdout
    assert "evaluate with: docbot eval sq/questions.jsonl --docs sq/docs" in imported.stdout
    assert docbot(tmp_path, "index", "sq/docs").returncode == 0

    gates = ["--fail-under", "exact_match=1", "--fail-under", "hit@10=0"]  # extractive answers are whole sentences
    done = docbot(tmp_path, "eval", "sq/questions.jsonl", "--out", "run", *gates)
    assert done.returncode == 1
    assert "gate(s) failed: exact_match: 0.000 < 1" in done.stderr
    assert "## Gates: FAILED" in done.stdout and "- FAIL: `exact_match` ≥ 1 (0.000 < 1)" in done.stdout
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["run"]["index"] == str(tmp_path / "data") and results["run"]["docs"] is None
    assert [g["passed"] for g in results["gates"]] == [False, True]
    assert (results["counts"]["answerable"], results["counts"]["unanswerable"]) == (2, 2)
    page = (tmp_path / "run" / "report.html").read_text()
    assert "<script" not in page and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp;" in page
