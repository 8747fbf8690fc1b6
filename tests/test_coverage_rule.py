"""Coverage that no corpus moves (index.term_support, index.coverage) and answers that supply what is asked
(bot.answer.supplies): the rules themselves, on plain text, in the fast tier. The same rules over real corpora with
the real model are in tests/test_coverage_corpora.py."""

from __future__ import annotations

from bot.answer.supplies import asked_about, holds_share, restrictions, supplies, supplies_at
from index.coverage import DENSE_WEIGHT, FLOOR, evidence
from index.term_support import missing_terms, question_terms, term_support

BAKERY = "The Brannock Black rye loaf is baked for 45 minutes at 220 degrees in the wood-fired oven."


def test_common_and_question_words_weigh_nothing_rare_words_weigh_most() -> None:
    weights = question_terms("Which people describe the al dente pasta in the essay?")
    assert "which" not in weights and "peopl" not in weights and "essay" not in weights and "describ" not in weights
    assert weights["dent"] > weights["pasta"] > 0


def test_support_is_the_weighted_share_of_the_question_the_passages_hold_by_stem() -> None:
    assert term_support("How long is the Brannock Black baked?", [BAKERY]) == 1.0  # "baked" and "bake" alike
    assert term_support("How high is Mount Everest?", [BAKERY]) == 0.0
    partly = term_support("How long is the Brannock Black baked in a pizza oven?", [BAKERY])
    assert 0.5 < partly < 1.0
    assert term_support("What is it?", [BAKERY]) == 1.0  # a question naming nothing rare: the similarity decides


def test_missing_terms_come_rarest_first() -> None:
    assert missing_terms("Is the Brannock Black served with pasta al dente?", [BAKERY])[:2] == ["dente", "pasta"]


def test_the_floor_is_fixed_and_needs_both_signals_or_a_strong_one() -> None:
    assert evidence(0.0, 1.0) < FLOOR  # every word held, nothing alike in meaning: not enough alone
    assert evidence(0.5, 0.0) >= FLOOR  # close in meaning, in other words: covered
    assert evidence(0.3, 0.6) >= FLOOR > evidence(0.3, 0.2)
    assert DENSE_WEIGHT * 0.5 == FLOOR


FIGHTERS = "Between two and three thousand ISIS fighters are still active in and around Mosul."
STRENGTH = "The strength of the Iraqi army fell by 50% after the fall of Mosul in 2014."
ATTACKS = "In April alone, the organization succeeded in conducting 108 attacks in Iraq."
CAVES = "Last month, warplanes attacked caves used by the group, killing 5 to 10 of its members."


def test_a_sentence_supplies_what_is_asked_or_the_documents_do_not_say() -> None:
    assert not supplies("How many people live in Mosul?", FIGHTERS, FIGHTERS, FIGHTERS)  # counts fighters
    assert not supplies("When was Abu Bakr al-Baghdadi born?", STRENGTH, STRENGTH, STRENGTH)  # a date, no birth
    assert not supplies("How many fighters does ISIS have?", "The fighters hide in caves.", "x", "x")  # no number
    question = "How many attacks did ISIS carry out in Iraq in April?"
    assert supplies(question, ATTACKS, ATTACKS, ATTACKS)
    assert not supplies(question, CAVES, CAVES, CAVES)  # attacks, a number, but not April's
    assert supplies("Why is ISIS growing again?", CAVES, CAVES, CAVES)  # an open question: retrieval decided


def test_what_is_asked_about_is_the_counted_thing_the_attribute_or_the_dated_event() -> None:
    assert asked_about("How many people live in Mosul?") == {"peopl"}
    assert asked_about("What is the annual budget of the Iraqi army?") == set()  # open: see supplies' docstring
    assert asked_about("When was Abu Bakr al-Baghdadi born?") == {"born"}
    assert asked_about("In what year was Agnes Tullow born?") == {"born"}  # the same question, asked otherwise
    assert asked_about("In which year did the war end?") == {"end"}
    assert asked_about("What year did Agnes Tullow start the Hollin Street Bakery?") == set()  # a name ends it
    assert asked_about("How much did the glasshouse cost?") == {"cost"}
    assert asked_about("When does Port Elsen hold its Herring Festival?") == set()  # names are retrieval's
    assert asked_about("Why is ISIS growing again?") == set()


def test_a_neighbouring_sentence_can_name_what_the_answer_is_about() -> None:
    passage = "The Palm Vault glasshouse opened in 1911. It cost 40,000 crowns to build."
    assert supplies_at("How much did the Palm Vault glasshouse cost?", passage, (passage.index("It"), len(passage)))
    assert not supplies_at("How much did the Palm Vault glasshouse weigh?", passage, (0, passage.index(" It")))


def test_sentence_choice_weighs_what_the_question_restricts() -> None:
    question = "How many attacks did ISIS carry out in Iraq in April?"
    assert restrictions(question) == {"april"}
    assert holds_share(ATTACKS, restrictions(question)) > holds_share(CAVES, restrictions(question))


def test_a_time_in_words_answers_when() -> None:
    ferry = "The Larkspur ferry leaves the north pier at seven minutes past every hour."
    assert supplies("When does the Larkspur ferry leave the north pier?", ferry, ferry, ferry)
    office = "The harbour office opens at 7:30 on weekdays."
    assert supplies("When does the harbour office open?", office, office, office)
