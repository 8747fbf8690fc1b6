"""Citations that hold the answer: a sentence that only echoes the question is quoted with the next one, which
says what was asked; every further cited sentence must add words of its own (fast tier: the hashing embedder)."""

from __future__ import annotations

from bot.answer.extractive import ExtractiveAnswerer
from bot.answer.novelty import echoes, new_words
from bot.config import Settings
from index.hashing import HashingEmbedder
from index.retriever import Passage
from index.store import VectorStore

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
