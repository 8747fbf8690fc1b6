"""Follow-up condensing and the extractive answerer's preferences, on hand-made cases."""

from __future__ import annotations

from bot.answer.chat import condense_deterministic
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
    assert answer_type_factor("Why did it grow?", "Because of 3 reasons.") == 1.0
