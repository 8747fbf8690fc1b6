"""Question-set validation: every bad line reported with its number and what is wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import EVAL_SET

from bot.eval.questions import QuestionItem, QuestionSetError, load_question_set, write_question_set

GOOD = {"id": "a", "question": "Q?", "answers": ["x"], "evidence": "e", "answerable": True}


def _problems(tmp_path: Path, lines: list[str]) -> list[str]:
    path = tmp_path / "set.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(QuestionSetError) as caught:
        load_question_set(path)
    return caught.value.problems


def test_the_seed_set_is_valid() -> None:
    items = load_question_set(EVAL_SET)
    assert [i.id for i in items] == [f"dev-0{n}" for n in range(1, 9)]
    assert items[6].answerable is False and items[6].answers == []
    assert items[7].history == [("What group is the article about?", "The Islamic State (ISIS).")]


def test_every_bad_line_is_reported(tmp_path: Path) -> None:
    lines = [
        json.dumps(GOOD),
        "not json",
        "[1, 2]",
        json.dumps(GOOD),
        json.dumps({**GOOD, "id": "b", "question": "  ", "answers": []}),
        json.dumps({**GOOD, "id": "c", "answers": "x", "answerable": "yes", "extra": 1}),
        json.dumps({**GOOD, "id": 5}),
        json.dumps({**GOOD, "id": "d", "history": [["only the user"]]}),
        "",
        json.dumps({k: v for k, v in GOOD.items() if k != "evidence"} | {"id": "e"}),
        json.dumps({**GOOD, "id": "f", "answerable": False}),
    ]
    assert _problems(tmp_path, lines) == [
        "line 2: not valid JSON (expected ident at line 1 column 2)",
        "line 3: not a JSON object",
        "line 4: id 'a' already used on line 1",
        "line 5: question: empty",
        "line 5: answerable is true but answers has no non-empty answer",
        "line 6: answers: input should be a valid array",
        "line 6: answerable: input should be a valid boolean",
        "line 6: unknown field 'extra'",
        "line 7: id: input should be a valid string",
        "line 8: history.0: should be a [user, assistant] pair of strings",
        "line 10: evidence: field required",
        "line 11: answerable is false but answers is not empty",
        "line 11: answerable is false but evidence is not empty",
    ]


def test_an_empty_file_is_an_error(tmp_path: Path) -> None:
    assert _problems(tmp_path, ["", "  "]) == ["no questions in the file"]


def test_write_then_read_round_trips(tmp_path: Path) -> None:
    items = [
        QuestionItem(id="1", question="Who?", answers=["Ann"], evidence="Ann did", answerable=True, source="a.txt"),
        QuestionItem(id="2", question="And?", answers=[], evidence="", answerable=False, history=[("Who?", "Ann")]),
    ]
    path = tmp_path / "out.jsonl"
    assert write_question_set(path, items) == 2
    assert load_question_set(path) == items
    first, second = (json.loads(line) for line in path.read_text().splitlines())
    assert "history" not in first and first["source"] == "a.txt"
    assert second["history"] == [["Who?", "Ann"]] and "source" not in second
