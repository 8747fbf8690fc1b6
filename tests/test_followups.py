"""Follow-up condensing and the extractive answerer's preferences, on hand-made cases."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

from bot.answer.chat import answer_names, condense_deterministic, needs_context
from bot.answer.extractive import ANSWER_TYPE_FACTOR, answer_type_factor

LONG_ANSWER = (
    "Last month, American and British warplanes carried out a series of attacks against a network of caves "
    "in northern Iraq, which were used by ISIS fighters as their base. [1]"
)


def test_a_short_earlier_answer_names_the_topic_of_the_follow_up() -> None:
    query = condense_deterministic(
        "Who is the new leader of the group?", [("What group is the article about?", "The Islamic State (ISIS).")]
    )
    assert query.startswith("Who is the new leader of the group? (")
    assert "Islamic" in query and "ISIS" in query


def test_a_long_earlier_answer_does_not_pull_the_search_back_to_its_passage() -> None:
    query = condense_deterministic("Where was one of them?", [("How many attacks did ISIS carry out?", LONG_ANSWER)])
    assert "attacks" in query and "ISIS" in query  # the earlier question's words
    assert "warplanes" not in query and "caves" not in query  # not the earlier answer's


def test_the_last_two_questions_give_context_and_a_standalone_question_is_left_alone() -> None:
    history = [("Who is the new leader of the group?", LONG_ANSWER), ("When did he publish that message?", LONG_ANSWER)]
    query = condense_deterministic("How many fighters does it have?", history)
    assert "leader" in query and "message" in query
    assert (
        condense_deterministic("How many ISIS fighters are in Iraq?", history) == "How many ISIS fighters are in Iraq?"
    )


def test_sentences_holding_the_kind_of_answer_asked_for_are_preferred() -> None:
    assert answer_type_factor("How many attacks were there?", "It carried out 108 attacks.") == ANSWER_TYPE_FACTOR
    assert answer_type_factor("How many attacks were there?", "It carried out many attacks.") == 1.0
    assert answer_type_factor("When did he speak?", "He spoke at the end of last March.") == ANSWER_TYPE_FACTOR
    assert answer_type_factor("Who leads it?", "It is led by Abu Ibrahim al-Qurashi.") == ANSWER_TYPE_FACTOR
    assert answer_type_factor("Who leads it?", "Nobody knows.") == 1.0
    assert answer_type_factor("Why did it grow?", "Because of 3 reasons.") == ANSWER_TYPE_FACTOR
    assert answer_type_factor("What factors explain it?", "There are a number of factors that explain it.") == 1.0
    assert answer_type_factor("Why did it grow?", "It took advantage of the paralysis.") == ANSWER_TYPE_FACTOR


def test_a_follow_up_about_a_person_takes_the_name_the_answer_gave() -> None:
    """Issue 29: "he" is the person the answer named, not the words of the question before."""
    answer = (
        "British writer Con Coflin says that there are increasing signs in countries such as Iraq, Afghanistan and "
        "Libya that the Islamic State leadership seeks to rise. [1] He adds more. [2]"
    )
    turn = ("Who is the British writer quoted in the article?", answer)
    assert answer_names(turn)[0] == "Con Coflin"  # "British" opens the sentence and the question named it
    query = condense_deterministic("Which newspaper does he work for?", [turn])
    assert "Con Coflin" in query
    assert "Coflin" not in condense_deterministic("How many loaves does it hold?", [turn])  # "it": not a person
    assert answer_names(("Who?", "The documents do not cover this question.")) == []


def test_a_question_that_carries_on_is_a_follow_up() -> None:
    history = [("How many attacks did ISIS carry out in Iraq in April?", LONG_ANSWER)]
    assert needs_context("And what happened in early May?", history)
    assert needs_context("What about Kirkuk?", history)
    assert "April" in condense_deterministic("And what happened in early May?", history)


def test_a_question_that_names_what_its_pronouns_stand_for_is_standalone() -> None:
    history = [("Who runs the bakery?", "Maren Tullow runs the bakery. [1]")]
    for question in (
        "When does Port Elsen hold its Herring Festival?",  # "its": Port Elsen
        "The author switched his major during college: what were his two reasons?",  # "his": the author
        "What rebate rate are members getting as their dividend?",  # "their": members
        "How much does it cost to park a car overnight at the harbour?",  # "it" stands for nothing
        "Why is it important for organizations to choose a platform?",
        "Who was the mason that built the bakery's wood-fired oven?",  # "that" inside the question
        "What is the capital of Libya?",
    ):
        assert condense_deterministic(question, history) == question, question
    for question in ("What is her advice for keeping bread?", "When was it founded?", "Why?"):
        assert needs_context(question, history), question


def test_no_standalone_question_of_the_repository_sets_is_rewritten() -> None:
    """Each question asked after the one before it in its set (that one's evidence as the answer) stays as it is."""
    data = Path(__file__).parent / "data"
    for path in (data / "broad.jsonl", data / "seed_dev.jsonl"):
        items = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        for before, item in itertools.pairwise(items):
            history = [(before["question"], before.get("evidence") or "x")]
            assert condense_deterministic(item["question"], history) == item["question"], item["question"]
