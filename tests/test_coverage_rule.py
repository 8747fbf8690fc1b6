"""Coverage that no corpus moves (index.term_support, index.coverage) and answers that supply what is asked
(bot.answer.supplies): the rules themselves, on plain text, in the fast tier. The same rules over real corpora with
the real model are in tests/test_coverage_corpora.py."""

from __future__ import annotations

from bot.answer.supplies import (
    asked_about,
    asked_kind,
    holds_share,
    question_names,
    restrictions,
    supplies,
    supplies_at,
)
from index.coverage import DENSE_WEIGHT, FLOOR, evidence
from index.term_support import missing_terms, question_terms, term_support
from index.types import Passage

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
    isis = f"ISIS is rebuilding. {ATTACKS}"  # the sentence before names who "the organization" is
    assert supplies(question, ATTACKS, isis, isis)
    assert not supplies(question, CAVES, CAVES, CAVES)  # attacks, a number, but not April's
    assert supplies("Why is ISIS growing again?", CAVES, CAVES, CAVES)  # an open question: retrieval decided


def test_what_is_asked_about_is_the_counted_thing_the_attribute_or_the_dated_event() -> None:
    assert asked_about("How many people live in Mosul?") == {"peopl"}
    assert asked_about("What is the annual budget of the Iraqi army?") == set()  # a sum of money is asked for
    assert asked_about("What is the population of Mosul?") == {"popul"}  # a bare number must say what it counts
    assert asked_about("When was Abu Bakr al-Baghdadi born?") == {"born"}
    assert asked_about("In what year was Agnes Tullow born?") == {"born"}  # the same question, asked otherwise
    assert asked_about("In which year did the war end?") == {"end"}
    assert asked_about("What year did Agnes Tullow start the Hollin Street Bakery?") == set()  # a name ends it
    assert asked_about("How much did the glasshouse cost?") == {"cost"}
    assert asked_about("When does Port Elsen hold its Herring Festival?") == set()  # names are retrieval's
    assert asked_about("Why is ISIS growing again?") == set()


def passage_of(text: str, source: str = "garden.md", start: int = 0, title: str = "Garden guide") -> Passage:
    return Passage("id", text, source, title, None, start, start + len(text), 0.0, None)


def test_a_neighbouring_sentence_can_name_what_the_answer_is_about() -> None:
    passages = [passage_of("The Palm Vault glasshouse opened in 1911. It cost 40,000 crowns to build.")]
    text = passages[0].text
    assert supplies_at("How much did the Palm Vault glasshouse cost?", passages, 0, (text.index("It"), len(text)))
    assert not supplies_at("How much did the Palm Vault glasshouse weigh?", passages, 0, (0, text.index(" It")))


def test_sentence_choice_weighs_what_the_question_restricts() -> None:
    question = "How many attacks did ISIS carry out in Iraq in April?"
    assert restrictions(question) == {"april"}
    assert holds_share(ATTACKS, restrictions(question)) > holds_share(CAVES, restrictions(question))


def test_a_time_in_words_answers_when() -> None:
    ferry = "The Larkspur ferry leaves the north pier at seven minutes past every hour."
    assert supplies("When does the Larkspur ferry leave the north pier?", ferry, ferry, ferry)
    office = "The harbour office opens at 7:30 on weekdays."
    assert supplies("When does the harbour office open?", office, office, office)


def test_the_kind_of_answer_is_read_from_the_question_form() -> None:
    kinds = {
        "What is the annual budget of the Iraqi army?": "a sum of money",
        "How much does a loaf cost?": "a sum of money",
        "How many employees does Quillon have?": "a number that counts",
        "At how many survey sites were trout found?": "a number that counts",
        "What year was the castle founded?": "a year",
        "What time does the canteen open for breakfast?": "a time of day",
        "When was the bridge built?": "a date or a time",
        "How long is the River Ossel?": "a length or a duration",
        "How tall is the keep?": "a length",
        "What temperature must fridges be kept at?": "a temperature",
        "What is the population of Port Elsen?": "a number",
        "Who funded the survey?": "a name",
    }
    for question, label in kinds.items():
        kind = asked_kind(question)
        assert kind is not None and kind.label == label, question
    assert asked_kind("Why is ISIS growing again?") is None  # a reason is looked for, not required


def test_a_sum_of_money_a_share_or_a_year_does_not_count_things() -> None:
    question = "How many employees does Quillon Systems have?"
    allowance = "Each employee has a wellbeing allowance of €300 per calendar year."
    assert not supplies(question, allowance, allowance, allowance)
    assert not supplies("How many sites were surveyed?", "The sites were surveyed in 1987.", "x", "x")
    staff = "Quillon Systems has 240 employees in three offices."
    assert supplies(question, staff, staff, staff)
    assert not supplies("How many visitors does the garden get?", "It covers 14 hectares.", "visitors", "visitors")


def test_a_measure_is_answered_in_its_unit_and_a_year_or_a_time_in_theirs() -> None:
    assert supplies("How long is the river?", "The river is 94.6 kilometres long.", "river", "river")
    assert supplies("How long does the crossing take?", "The crossing takes 1 hour 40 minutes.", "x", "x")
    area = "The total catchment area is 1,180 square kilometres."
    assert not supplies("How long is the Hollow Beck?", area, area, area)
    assert supplies("What temperature must fridges run at?", "Fridges run at 3°C or below.", "x", "x")
    assert not supplies("What temperature must fridges run at?", "Fridges are checked at 07:00.", "x", "x")
    release = "The current release is Tallyport 3.4.2."
    assert not supplies("When was Tallyport first released?", release, release, release)  # a version is no date
    founded = "It was founded in 1184."
    assert supplies("What year was the castle founded?", founded, founded, founded)
    assert not supplies("What time does the canteen open?", "The canteen serves breakfast.", "x", "x")


def test_who_is_answered_by_a_name_the_question_does_not_give_and_its_deed() -> None:
    title = "The Lantern Keeper, an opera in three acts, was revived in 1987."
    assert not supplies("Who conducted the premiere of The Lantern Keeper?", title, title, title)
    conducted = "The Lantern Keeper's premiere was conducted by Anton Weller at the Velmar Court Theatre."
    assert supplies("Who conducted the premiere of The Lantern Keeper?", conducted, conducted, conducted)
    assert supplies("Who scored the most goals?", "Top scorer was Danny Price.", "Top scorer was Danny Price.", "")


def test_a_name_the_documents_know_elsewhere_must_be_where_a_value_is_taken_from() -> None:
    question = "When was Varnholt's husband Benedikt Horvath born?"
    assert question_names(question) == (frozenset({"varnholt"}), frozenset({"benedikt", "horvath"}))
    birth = "Varnholt was born on 14 March 1872 in Kessendorf."
    married = "In 1901 she married the cellist Benedikt Horvath."
    assert not supplies(question, birth, birth, birth, [married])  # the documents know him, not his birth
    his = f"{married} Horvath, Varnholt's elder by a year, was born on 2 May 1871."
    assert supplies(question, his, his, his, [married])
    # a value of something no passage names is not given, however close the subject
    heights = "Mount Haldor is the highest point of the catchment, with a summit at 1,347 metres."
    assert supplies("How high is Mount Haldor?", heights, heights, heights)
    assert not supplies("How high is Mount Everest?", heights, heights, heights, ["The Ossel rises at a tarn."])
    # an open question naming what no passage holds is the coverage rule's to weigh, not this one's
    assert supplies("Why did Paul Graham sell his startup?", "It was sold because it grew.", "x", "x", ["y"])


def test_a_section_heading_just_before_a_passage_names_what_it_is_about() -> None:
    heading = passage_of("## Harbour Buns\nHarbour Buns are soft cardamom buns.", start=0)
    method = passage_of("### Method\nKnead the dough. Bake at 190°C for 14 minutes.", start=heading.end + 40)
    other = passage_of("The Brannock Black is baked for 45 minutes.", source="bread.md")
    question = "How many minutes do the Harbour Buns need in the oven?"
    span = (method.text.index("Bake"), len(method.text))
    assert supplies_at(question, [heading, method, other], 1, span)
    far = passage_of(method.text, start=heading.end + 5000)
    assert not supplies_at(question, [heading, far, other], 1, span)
