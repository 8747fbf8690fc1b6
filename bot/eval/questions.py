"""Question sets (one JSON object a line; the format: docs/eval.md, "The question set"): validated reading, writing.

A file is read whole and checked before anything runs: every bad line is reported as
``line N: what is wrong``, and a file with any bad line yields no questions at all.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator


class QuestionSetError(ValueError):
    """The question set cannot be used; ``problems`` holds one ``line N: ...`` message per problem."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(f"{path}: " + "; ".join(problems))


class QuestionItem(BaseModel):
    """One question of a set, as written in the file."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    id: str
    question: str
    answers: list[str]
    evidence: str
    answerable: bool
    history: list[tuple[str, str]] = []
    source: str | None = None
    #: Optional: ``answerable``; for an unanswerable question ``near`` (about the documents' subject, asking what
    #: they do not give) or ``off`` (about something else). Reports give refusals for each kind.
    kind: Literal["answerable", "near", "off"] | None = None

    @model_validator(mode="after")
    def _kind_matches(self) -> QuestionItem:
        if self.kind is not None and (self.kind == "answerable") != self.answerable:
            raise ValueError(f"kind {self.kind!r} does not go with answerable {str(self.answerable).lower()}")
        return self


def _pydantic_problems(error: ValidationError) -> list[str]:
    problems: list[str] = []
    for item in error.errors(include_url=False):
        loc = item["loc"]
        where = ".".join(str(part) for part in loc)
        if loc[:1] == ("history",) and len(loc) >= 2:
            message = f"history.{loc[1]}: should be a [user, assistant] pair of strings"
            if message not in problems:
                problems.append(message)
        elif item["type"] == "json_invalid":
            problems.append(f"not valid JSON ({item['ctx']['error']})")
        elif item["type"] == "model_type":
            problems.append("not a JSON object")
        elif item["type"] == "extra_forbidden":
            problems.append(f"unknown field {where!r}")
        else:
            problems.append(f"{where}: {item['msg'].lower()}" if where else item["msg"].lower())
    return problems


def _consistency_problems(item: QuestionItem) -> list[str]:
    problems = []
    if not item.id.strip():
        problems.append("id: empty")
    if not item.question.strip():
        problems.append("question: empty")
    if item.answerable and not any(answer.strip() for answer in item.answers):
        problems.append("answerable is true but answers has no non-empty answer")
    if not item.answerable and item.answers:
        problems.append("answerable is false but answers is not empty")
    if not item.answerable and item.evidence:
        problems.append("answerable is false but evidence is not empty")
    return problems


def parse_line(text: str) -> tuple[QuestionItem | None, list[str]]:
    """One line of a question set: the item, or the problems that stop it from being one."""
    try:
        item = QuestionItem.model_validate_json(text)
    except ValidationError as exc:
        return None, _pydantic_problems(exc)
    problems = _consistency_problems(item)
    return (None if problems else item), problems


def load_question_set(path: Path) -> list[QuestionItem]:
    """Every question of the file, or :class:`QuestionSetError` listing every bad line (blank lines are skipped)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise QuestionSetError(path, [f"cannot read the file ({exc})"]) from exc
    items: list[QuestionItem] = []
    problems: list[str] = []
    first_line: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        item, line_problems = parse_line(line)
        problems += [f"line {number}: {problem}" for problem in line_problems]
        if item is None:
            continue
        if item.id in first_line:
            problems.append(f"line {number}: id {item.id!r} already used on line {first_line[item.id]}")
            continue
        first_line[item.id] = number
        items.append(item)
    if not items and not problems:
        problems.append("no questions in the file")
    if problems:
        raise QuestionSetError(path, problems)
    return items


def write_question_set(path: Path, items: Iterable[QuestionItem]) -> int:
    """Write items one JSON object a line (optional fields only when set); returns how many."""
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        for item in items:
            record = item.model_dump(exclude_defaults=True)
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count
