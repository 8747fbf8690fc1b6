"""SQuAD v1.1 / v2.0 → a folder of documents and a question set, ready for ``docbot eval``.

Each article becomes one text file (its paragraphs separated by blank lines). Each question becomes
one item: the distinct answer texts as references, and as evidence the sentence(s) of the paragraph
that hold the first answer, so that a passage counts as relevant only when it carries the answer in
its context (a bare answer like "1990" would match many passages). SQuAD v2.0's unanswerable
questions (``is_impossible``) become items with ``answerable: false``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.answer.text import sentence_spans
from bot.eval.questions import QuestionItem, write_question_set

_UNSAFE = re.compile(r"[^\w.-]+")


class SquadError(ValueError):
    """The file is not SQuAD-shaped JSON."""


@dataclass
class SquadImport:
    questions: Path
    documents: list[Path] = field(default_factory=list)
    answerable: int = 0
    unanswerable: int = 0
    answers_not_found: list[str] = field(default_factory=list)  # ids whose answer text is not in its paragraph

    def summary(self) -> str:
        lines = [
            f"wrote {len(self.documents)} document(s) and {self.answerable + self.unanswerable} question(s) "
            f"({self.unanswerable} unanswerable) to {self.questions}"
        ]
        if self.answers_not_found:
            lines.append(
                f"{len(self.answers_not_found)} answer(s) not found in their paragraph, evidence left empty: "
                + ", ".join(self.answers_not_found[:10])
            )
        return "\n".join(lines)


def file_name(title: str, taken: set[str]) -> str:
    """A safe, unique ``.txt`` name for an article title."""
    stem = _UNSAFE.sub("_", title).strip("._") or "article"
    name, n = f"{stem}.txt", 1
    while name in taken:
        n += 1
        name = f"{stem}-{n}.txt"
    taken.add(name)
    return name


def answer_span(context: str, text: str, start: int | None) -> tuple[int, int] | None:
    """Where the answer lies in the paragraph: at its given offset, else its first occurrence."""
    if start is not None and context[start : start + len(text)] == text:
        return start, start + len(text)
    found = context.find(text)
    return None if found < 0 or not text else (found, found + len(text))


def evidence_for(context: str, span: tuple[int, int]) -> str:
    """The sentence(s) of the paragraph that the answer span touches, verbatim."""
    lo, hi = span
    touched = [(a, b) for a, b in sentence_spans(context) if a < hi and b > lo]
    if not touched:
        return context[lo:hi]
    return context[touched[0][0] : touched[-1][1]]


def _item(qa: dict[str, Any], context: str, source: str, result: SquadImport) -> QuestionItem:
    qid = str(qa["id"])
    question = str(qa["question"]).strip()
    if qa.get("is_impossible", False):
        result.unanswerable += 1
        return QuestionItem(id=qid, question=question, answers=[], evidence="", answerable=False)
    answers = qa.get("answers") or []
    if not answers:
        raise SquadError(f"question {qid}: no answers and not marked is_impossible")
    texts = list(dict.fromkeys(str(a["text"]).strip() for a in answers if str(a["text"]).strip()))
    first = answers[0]
    span = answer_span(context, str(first["text"]), first.get("answer_start"))
    if span is None:
        result.answers_not_found.append(qid)
    result.answerable += 1
    evidence = evidence_for(context, span) if span else ""
    return QuestionItem(id=qid, question=question, answers=texts, evidence=evidence, answerable=True, source=source)


def _articles(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SquadError(f"{path}: cannot read it as JSON ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise SquadError(f'{path}: not SQuAD: expected {{"version": ..., "data": [articles]}}')
    return data["data"]


def import_squad(path: Path, out: Path, max_articles: int | None = None) -> SquadImport:
    """Write ``out/docs/<title>.txt`` for each article and ``out/questions.jsonl`` for all questions."""
    articles = _articles(path)[:max_articles]
    docs = out / "docs"
    docs.mkdir(parents=True, exist_ok=True)
    result = SquadImport(questions=out / "questions.jsonl")
    items: list[QuestionItem] = []
    seen: set[str] = set()
    taken: set[str] = set()
    try:
        for number, article in enumerate(articles, start=1):
            name = file_name(str(article.get("title") or f"article-{number}"), taken)
            paragraphs = [str(p["context"]) for p in article["paragraphs"]]
            (docs / name).write_text("\n\n".join(p.strip() for p in paragraphs) + "\n", encoding="utf-8")
            result.documents.append(docs / name)
            for paragraph, context in zip(article["paragraphs"], paragraphs, strict=True):
                for qa in paragraph["qas"]:
                    item = _item(qa, context, name, result)
                    if item.id in seen:
                        raise SquadError(f"question id {item.id} appears twice")
                    seen.add(item.id)
                    items.append(item)
    except (KeyError, TypeError, AttributeError) as exc:
        raise SquadError(f"{path}: not SQuAD-shaped ({type(exc).__name__}: {exc})") from exc
    write_question_set(result.questions, items)
    return result
