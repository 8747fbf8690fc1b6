"""Citations that hold the answer: a sentence that only echoes the question is quoted with the next one, which
says what was asked; every further cited sentence must add words of its own (fast tier: the hashing embedder)."""

from __future__ import annotations

import pytest

from bot.answer import extractive
from bot.answer.extractive import ExtractiveAnswerer
from bot.answer.novelty import echoes, new_words
from bot.config import Settings
from index.hashing import HashingEmbedder
from index.store import VectorStore
from index.types import Passage

QUESTION = "What factors explain the re-emergence of the Islamic State?"
ECHO = "There are a number of factors that explain the re-emergence of the Islamic State."
FACTORS = "The group exploited the civil war in Syria and the sectarian politics of the government in Baghdad."
ELSEWHERE = "Rain fell over the northern provinces for most of the week, flooding several roads."


def passage(text: str, number: int = 0) -> Passage:
    return Passage(f"c{number}", text, "article.txt", "article", None, 0, len(text), 1.0, None)


def answerer(settings: Settings) -> ExtractiveAnswerer:
    embedder = HashingEmbedder()
    return ExtractiveAnswerer(embedder, VectorStore(settings, embedder.name, embedder.dimension), 3)


def quotes(picks: list, passages: list[Passage]) -> list[str]:
    return [passages[p.passage_index].text[p.span[0] : p.span[1]] for p in picks]


def test_a_sentence_echoing_the_question_says_nothing_new() -> None:
    assert echoes(ECHO, QUESTION)
    assert not echoes(FACTORS, QUESTION)
    assert new_words(ECHO, [QUESTION]) == {"number"}
    assert {"exploit", "syria", "baghdad"} <= new_words(FACTORS, [QUESTION, ECHO])


def test_the_echo_is_quoted_with_the_sentence_that_answers(settings: Settings) -> None:
    passages = [passage(f"{ECHO} {FACTORS} {ELSEWHERE}")]
    picks = answerer(settings).pick(QUESTION, passages)
    assert quotes(picks, passages)[0] == f"{ECHO} {FACTORS}"


def test_a_sentence_adding_nothing_to_the_question_and_the_answer_is_not_cited(settings: Settings) -> None:
    repeat = "The factors that explain the re-emergence of the Islamic State include the civil war in Syria."
    passages = [passage(FACTORS, 0), passage(repeat, 1)]
    picks = answerer(settings).pick(QUESTION, passages)
    cited = quotes(picks, passages)
    assert len(cited) == len(set(cited))
    for n, quote in enumerate(cited[1:], start=1):
        assert len(new_words(quote, [QUESTION, *cited[:n]])) >= 2


MULTI = "Where did the author grow up, and what was his first computer?"
LEAD = (
    "The author grew up in Pittsburgh, where he got his first computer. "
    "His first computer was a kit his uncle soldered."
)
OTHER = "His first computer, the first computer he owned, was a TRS-80 computer."


def test_a_part_is_answered_from_the_lead_passage_when_it_answers_there_almost_as_well(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    passages = [passage(LEAD, 0), passage(OTHER, 1)]
    bot = answerer(settings)
    monkeypatch.setattr(extractive, "LEAD_SHARE", 2.0)  # never: each part from wherever it scores best
    anywhere = bot.pick(MULTI, passages)
    assert {p.passage_index for p in anywhere} == {0, 1}
    monkeypatch.setattr(extractive, "LEAD_SHARE", 0.0)  # always, when the lead passage has a sentence left
    from_lead = bot.pick(MULTI, passages)
    assert {p.passage_index for p in from_lead} == {0}
    assert len(from_lead) == 2 and "kit his uncle soldered" in " ".join(quotes(from_lead, passages))


def test_a_sentence_from_another_passage_is_cited_only_near_the_best_score(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    passages = [passage(LEAD, 0), passage(OTHER, 1)]
    bot = answerer(settings)
    monkeypatch.setattr(extractive, "LEAD_SHARE", 2.0)
    picks = bot.pick(MULTI, passages)
    other = next(p for p in picks if p.passage_index == 1)
    best = max(p.score for p in picks)
    monkeypatch.setattr(extractive, "CITE_SHARE", (other.score / best) + 0.01)
    assert all(p.passage_index == 0 for p in bot.pick(MULTI, passages))
    monkeypatch.setattr(extractive, "CITE_SHARE", (other.score / best) - 0.01)
    assert 1 in {p.passage_index for p in bot.pick(MULTI, passages)}


def test_a_companion_from_another_passage_must_score_nearer_the_best(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    question = "Do worker bees live long in summer?"  # an open question: no kind of answer weighs in
    best = "Worker bees live about six weeks in summer. In summer worker bees live six weeks, worn out by foraging."
    other = "In summer, worker bees live short lives of hard work for the hive."
    passages = [passage(best, 0), passage(other, 1)]
    bot = answerer(settings)
    monkeypatch.setattr(extractive, "ELSEWHERE_SHARE", 0.0)
    picks = bot.pick(question, passages)
    assert [p.passage_index for p in picks] == [0, 1, 0]  # all three close to the best (COMPANION_SHARE)
    ratio = picks[1].score / picks[0].score
    monkeypatch.setattr(extractive, "ELSEWHERE_SHARE", ratio + 0.01)
    assert [p.passage_index for p in bot.pick(question, passages)] == [0, 0]  # the same passage's companion stays
    monkeypatch.setattr(extractive, "ELSEWHERE_SHARE", ratio - 0.01)
    assert [p.passage_index for p in bot.pick(question, passages)] == [0, 1, 0]


def test_a_quote_that_points_back_brings_the_sentence_it_refers_to(settings: Settings) -> None:
    """ "She was born on 14 March 1872." alone does not say who: the sentence before it does."""
    text = (
        "Ilse Varnholt was a composer from the shore of Lake Arun. She was born on 14 March 1872 in Kessendorf. "
        "Rain fell over the northern provinces for most of the week."
    )
    passages = [passage(text)]
    picks = answerer(settings).pick("On what date was the composer born in Kessendorf?", passages)
    assert quotes(picks, passages)[0].startswith("Ilse Varnholt was a composer")
    assert "born on 14 March 1872" in quotes(picks, passages)[0]
