"""Every bad setting is one line naming it (DOCBOT_NAME) and what it takes, exit code 2, never a traceback.

Settings are checked before anything is loaded, so these run through ``CliRunner`` with no model or store.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app

ROOT = Path(__file__).resolve().parent.parent

BAD = [
    ("DOCBOT_CHROMA_URL", "localhost:8000", "'localhost:8000' is not accepted; it takes a Chroma server URL like"),
    ("DOCBOT_CHROMA_URL", "http://127.0.0.1:99999", "it takes a Chroma server URL like http://127.0.0.1:8000"),
    ("DOCBOT_EMBED_ORIGINS", "https://ok.example,wiki.example.com", "and wiki.example.com is not one"),
    ("DOCBOT_USERS", "ann:pw,bob", "it takes user:password[:role] entries, and 'bob' is not one"),
    ("DOCBOT_API_KEYS", "k-one,k two", "it takes keys without spaces (sent as Authorization: Bearer <key>); key 2"),
    ("DOCBOT_K", "0", "DOCBOT_K: '0' is not accepted; it takes a whole number ≥ 1 and ≤ 100"),
    ("DOCBOT_PORT", "http", "DOCBOT_PORT: 'http' is not accepted; it takes a whole number ≥ 1 and ≤ 65535"),
    ("DOCBOT_LLM_TEMPERATURE", "3", "it takes a number ≥ 0 and ≤ 2"),
    ("DOCBOT_GENERATOR", "gpt4", "DOCBOT_GENERATOR: 'gpt4' is not accepted; it takes one of extractive, local, openai"),
    ("DOCBOT_EMBED_PRECISION", "half", "it takes one of auto, float32, bfloat16"),
    ("DOCBOT_CHUNK_OVERLAP", "900", "it takes a number of characters smaller than chunk_size (800)"),
]


def one_error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in output, output
    assert lines[0].startswith("error: "), output
    return lines[0]


@pytest.mark.parametrize(("name", "value", "says"), BAD, ids=[f"{n}={v}" for n, v, _ in BAD])
def test_a_bad_setting_is_one_line_naming_it(
    name: str, value: str, says: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["ask", "what is docbot?"], env={name: value, "DOCBOT_DATA_DIR": str(tmp_path)})
    assert result.exit_code == 2, result.output
    line = one_error_line(result.output)
    assert line.startswith(f"error: {name}"), line
    assert says in line, line


def test_passwords_and_keys_are_never_echoed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["index"], env={"DOCBOT_USERS": "ann:s3cret-pw,nopass"})
    line = one_error_line(result.output)
    assert "DOCBOT_USERS" in line and "s3cret-pw" not in line
    result = CliRunner().invoke(app, ["index"], env={"DOCBOT_API_KEYS": "s3cret key"})
    line = one_error_line(result.output)
    assert "DOCBOT_API_KEYS" in line and "s3cret" not in line


@pytest.mark.parametrize(
    ("toml", "starts"),
    [
        (
            'k = 5\ngenerator = "extractive\n',
            "error: docbot.toml is not valid TOML (Illegal character '\\n' (at line 2",
        ),
        ("fetch_k = 0\n", "error: DOCBOT_FETCH_K: 0 is not accepted; it takes a whole number ≥ 1"),
    ],
    ids=["malformed", "value out of range"],
)
def test_docbot_toml_problems_are_one_line(
    toml: str, starts: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "docbot.toml").write_text(toml, encoding="utf-8")
    result = CliRunner().invoke(app, ["index"])
    assert result.exit_code == 2
    assert one_error_line(result.output).startswith(starts)


def test_python_app_py_says_the_same_one_line(tmp_path: Path) -> None:
    """``python app.py`` is ``docbot serve``: a bad setting stops it before any model loads."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "app.py")],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "DOCBOT_EMBED_ORIGINS": "*"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert one_error_line(done.stderr).startswith("error: DOCBOT_EMBED_ORIGINS: '*' is not accepted; it takes origins")
    assert done.stdout == ""


def test_the_cli_maps_domain_errors_in_one_place_and_leaves_bugs_alone() -> None:
    from bot.answer.errors import BackendError, QuestionError
    from bot.cli import failure_lines
    from bot.eval.run import EvalError, ResultsFileError
    from index.errors import IndexRunError, StoreUnavailableError

    assert failure_lines(QuestionError("the question is empty")) == (["the question is empty"], 2)
    assert failure_lines(ResultsFileError("r.json: not a readable results.json")) == (
        ["r.json: not a readable results.json"],
        2,
    )
    run_failed = IndexRunError("the disk is full", index_unchanged=True, disk_full=True)
    for failed in (StoreUnavailableError("down"), run_failed, BackendError("no model"), EvalError("nothing indexed")):
        assert failure_lines(failed) == ([str(failed)], 1)
    for bug in (ValueError("a library's"), RuntimeError("unexpected"), KeyError("x")):
        assert failure_lines(bug) is None
