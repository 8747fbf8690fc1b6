"""``docbot feedback export``: the votes in the state database as the JSON lines feedback.jsonl held (CliRunner)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from bot.answer.citations import Answer
from bot.cli import app
from bot.state.feedback import feedback_record


def _old_file(data_dir: Path, lines: list[str]) -> Path:
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "feedback.jsonl"
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_export_holds_an_old_feedback_file_once_and_writes_a_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    votes = [feedback_record(Answer(question=f"Q{n}?", text="A [1]."), "down", "ann") for n in range(2)]
    _old_file(data, [json.dumps(vote) for vote in votes])
    env = {"DOCBOT_DATA_DIR": str(data)}
    for _ in range(2):  # imported by the first run only
        result = CliRunner().invoke(app, ["feedback", "export"], env=env)
        assert result.exit_code == 0, result.output
        assert [json.loads(line) for line in result.stdout.splitlines()] == votes
    out = tmp_path / "votes.jsonl"
    assert CliRunner().invoke(app, ["feedback", "export", "-o", str(out)], env=env).exit_code == 0
    assert [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()] == votes
    refused = CliRunner().invoke(
        app, ["feedback", "export", "-o", str(tmp_path / "no" / "such" / "dir" / "f")], env=env
    )
    assert refused.exit_code == 2 and "choose another --output" in refused.output and "Traceback" not in refused.output


def test_a_malformed_old_file_is_one_line_naming_the_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _old_file(data, ['{"vote": "up"}'])
    result = CliRunner().invoke(app, ["feedback", "export"], env={"DOCBOT_DATA_DIR": str(data)})
    assert result.exit_code == 2
    [line] = result.output.strip().splitlines()
    assert "feedback.jsonl, line 1: not a vote" in line and "Traceback" not in result.output
