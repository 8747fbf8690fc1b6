"""Multi-part questions: the asking parts each get an answer; scene-setting statements do not."""

from __future__ import annotations

import pytest

from bot.answer.question_parts import question_parts
from bot.eval.retrievers import parse_retrievers, retrievers_markdown


def test_a_question_asking_one_thing_is_one_part() -> None:
    assert question_parts("Who is the new leader of the group?") == ["Who is the new leader of the group?"]
    assert question_parts("In the essay he moves. Where did he go?") == ["In the essay he moves. Where did he go?"]


def test_statements_set_the_scene_and_asking_sentences_are_parts() -> None:
    question = (
        "In the essay, the author discusses his interest in AI. What were the two main influences that drew him "
        "to AI and what realization led him to believe it was a hoax?"
    )
    assert question_parts(question) == [
        "What were the two main influences that drew him to AI",
        "what realization led him to believe it was a hoax?",
    ]


def test_imperatives_ask_too() -> None:
    question = "The author worked at Interleaf. Describe its unique feature. How did his habits differ?"
    assert question_parts(question) == ["Describe its unique feature.", "How did his habits differ?"]


def test_retriever_names_are_checked() -> None:
    assert parse_retrievers("hybrid, dense,bm25,dense") == ("hybrid", "dense", "bm25")
    with pytest.raises(ValueError, match="hybrid, dense, bm25"):
        parse_retrievers("hybrid,colbert")
    with pytest.raises(ValueError):
        parse_retrievers(" , ")


def test_retriever_table_has_one_row_each() -> None:
    row = {"questions": 2, "hit@1": 0.5, "hit@3": 1.0, "hit@5": 1.0, "hit@10": 1.0, "mrr": 0.75, "ndcg@10": 0.8}
    lines = retrievers_markdown({"hybrid": row, "bm25": {**row, "hit@1": None}})
    assert lines[0] == "## Retrievers"
    assert lines[-2].startswith("| hybrid | 2 | 0.500 | 1.000")
    assert lines[-1].startswith("| bm25 | 2 | — | 1.000")
    assert retrievers_markdown({}) == []
