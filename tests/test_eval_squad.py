"""The SQuAD importer on small hand-made v1.1 and v2.0 files (tests/data/squad_v1.json, squad_v2.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ROOT

from bot.eval.importers import SquadError, answer_span, evidence_for, file_name, import_squad
from bot.eval.questions import load_question_set

DATA = ROOT / "tests" / "data"
LIGHTHOUSE = (
    "The Lighthouse of Alexandria was built by the Ptolemaic Kingdom during the reign of Ptolemy II Philadelphus. "
    "It was between 100 and 137 metres tall. The lighthouse was badly damaged by earthquakes between 956 and 1323."
)


def test_v1_articles_become_documents_and_questions(tmp_path: Path) -> None:
    result = import_squad(DATA / "squad_v1.json", tmp_path / "out")
    assert [p.name for p in result.documents] == ["Photosynthesis.txt", "Lighthouse_of_Alexandria.txt"]
    lighthouse = (tmp_path / "out" / "docs" / "Lighthouse_of_Alexandria.txt").read_text()
    assert lighthouse == LIGHTHOUSE + "\n\nIts ruins were rediscovered in 1994 by French archaeologists in the " + (
        "eastern harbour of Alexandria.\n"
    )
    items = {i.id: i for i in load_question_set(tmp_path / "out" / "questions.jsonl")}
    assert list(items) == ["p1", "p2", "l1", "l2"]
    assert (result.answerable, result.unanswerable, result.answers_not_found) == (4, 0, [])
    # repeated answers are kept once, in order; the evidence is the sentence holding the first answer
    assert items["p1"].answers == ["in the leaves", "leaves"]
    assert items["p1"].evidence == "It takes place mainly in the leaves, inside organelles called chloroplasts."
    assert items["p1"].source == "Photosynthesis.txt" and items["p1"].answerable
    # p2's answer_start is wrong (3): the answer is found by its text instead
    assert items["p2"].evidence == (
        "The green pigment chlorophyll absorbs most strongly in the blue and red parts of the spectrum."
    )
    assert items["l1"].evidence == "It was between 100 and 137 metres tall."
    assert items["l2"].source == "Lighthouse_of_Alexandria.txt"
    assert "wrote 2 document(s) and 4 question(s) (0 unanswerable)" in result.summary()


def test_v2_unanswerable_questions(tmp_path: Path) -> None:
    result = import_squad(DATA / "squad_v2.json", tmp_path / "out")
    assert [p.name for p in result.documents] == ["Lighthouse_of_Alexandria.txt"]  # title "Lighthouse / of Alexandria?"
    items = {i.id: i for i in load_question_set(tmp_path / "out" / "questions.jsonl")}
    assert (result.answerable, result.unanswerable) == (2, 2)
    impossible = items["l3"]
    assert (impossible.answerable, impossible.answers, impossible.evidence, impossible.source) == (False, [], "", None)
    assert items["x1"].question.startswith("<script>")
    assert items["l1"].answerable and items["l1"].answers == ["between 100 and 137 metres"]


def test_max_articles(tmp_path: Path) -> None:
    result = import_squad(DATA / "squad_v1.json", tmp_path / "out", max_articles=1)
    assert [p.name for p in result.documents] == ["Photosynthesis.txt"]
    assert [i.id for i in load_question_set(result.questions)] == ["p1", "p2"]


def test_helpers_by_hand() -> None:
    taken: set[str] = set()
    assert [file_name(t, taken) for t in ("Super Bowl 50", "Super Bowl 50", "../..", "Ünïcode/ok")] == [
        "Super_Bowl_50.txt",
        "Super_Bowl_50-2.txt",
        "article.txt",
        "Ünïcode_ok.txt",
    ]
    assert answer_span("abc abc", "abc", 4) == (4, 7)  # the given offset wins
    assert answer_span("abc abc", "abc", 2) == (0, 3)  # a wrong offset falls back to the first occurrence
    assert answer_span("abc", "xyz", 0) is None
    # an answer across two sentences takes both
    assert evidence_for("One two. Three four. Five.", (4, 14)) == "One two. Three four."


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(data))
    return path


def _squad(qas: list[dict[str, object]], context: str = "C.") -> dict[str, object]:
    return {"version": "1.1", "data": [{"title": "T", "paragraphs": [{"context": context, "qas": qas}]}]}


def test_answer_missing_from_its_paragraph_leaves_evidence_empty(tmp_path: Path) -> None:
    qas = [{"id": "m", "question": "Q?", "answers": [{"text": "nowhere", "answer_start": 0}]}]
    result = import_squad(_write(tmp_path, _squad(qas, "Text.")), tmp_path / "out")
    assert result.answers_not_found == ["m"]
    assert load_question_set(result.questions)[0].evidence == ""
    assert "1 answer(s) not found in their paragraph" in result.summary()


@pytest.mark.parametrize(
    ("data", "complaint"),
    [
        ([1, 2], "not SQuAD"),
        ({"version": "1.1", "data": [{"title": "T"}]}, "not SQuAD-shaped"),
        (_squad([{"id": "a", "question": "Q"}]), "no answers and not marked is_impossible"),
        (_squad([{"id": "a", "question": "Q", "is_impossible": True}] * 2), "question id a appears twice"),
    ],
)
def test_bad_files(tmp_path: Path, data: object, complaint: str) -> None:
    with pytest.raises(SquadError, match=complaint):
        import_squad(_write(tmp_path, data), tmp_path / "out")


def test_not_json(tmp_path: Path) -> None:
    path = tmp_path / "squad.json"
    path.write_text("{")
    with pytest.raises(SquadError, match="cannot read it as JSON"):
        import_squad(path, tmp_path / "out")
