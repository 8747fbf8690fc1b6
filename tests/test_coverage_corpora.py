"""Refusal that holds on any corpus (issue #26), with the bundled model over real indexes.

The broad corpus (tests/data/broad: twelve short documents on unrelated everyday subjects, cooking, sport, travel,
music, history and health among them, written for these tests) answers its own questions and declines off-topic
ones, although it covers the very subjects general-knowledge questions are about. Every set's questions are
off-topic for the other set's documents. Near the seed article's subject, questions it does not answer get the
plain reply with related passages; the one it does answer is answered with the right sentence.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from answer_fixtures import EVAL_SET, build_retriever, clean_settings, write_docs
from helpers import app_client, indexed

from app import build
from bot.answer.chat import NOT_GIVEN, REFUSAL, Bot
from index.embeddings import Embedder
from index.retriever import HybridRetriever

BROAD = Path(__file__).parent / "data" / "broad"
BROAD_SET = Path(__file__).parent / "data" / "broad.jsonl"
APRIL = "How many attacks did ISIS carry out in Iraq in April?"
NOT_IN_THE_ARTICLE = (
    "How many people live in Mosul?",
    "When was Abu Bakr al-Baghdadi born?",
    "What is the annual budget of the Iraqi army?",
)


def items(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def broad(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> HybridRetriever:
    return build_retriever(clean_settings(tmp_path_factory.mktemp("broad") / "data"), embedder, BROAD)


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> HybridRetriever:
    root = tmp_path_factory.mktemp("seed")
    return build_retriever(clean_settings(root / "data"), embedder, write_docs(root / "docs"))


def refused_share(retriever: HybridRetriever, questions: list[str]) -> float:
    bot = Bot(retriever.settings, retriever, None)
    return sum(bot.ask(question).refused for question in questions) / len(questions)


def test_a_corpus_about_everyday_subjects_answers_its_own_questions_and_declines_the_rest(
    broad: HybridRetriever,
) -> None:
    own = items(BROAD_SET)
    answerable = [item["question"] for item in own if item["answerable"]]
    near = [item["question"] for item in own if item["kind"] == "near"]
    off = [item["question"] for item in own if item["kind"] == "off"]
    assert len(answerable) >= 40 and len(near) >= 24 and len(off) >= 24
    assert refused_share(broad, answerable) <= 0.05
    # near its subjects, what the documents do not give ("What is the population of Port Elsen?" of a visitor's
    # guide to Port Elsen) gets the plain reply, not a quote about something else
    assert refused_share(broad, near) >= 0.9
    # Its own off-topic questions were written to sit close to its documents ("How high is Mount Everest?" beside
    # a survey of mountain heights): 21 of 24 are declined today (docs/eval.md); another corpus's, all.
    assert refused_share(broad, off) >= 0.85
    assert refused_share(broad, [item["question"] for item in items(EVAL_SET)]) == 1.0


def test_the_broad_corpus_questions_are_off_topic_for_the_seed_article(seed: HybridRetriever) -> None:
    assert refused_share(seed, [item["question"] for item in items(BROAD_SET)]) >= 0.95


def test_the_seed_article_answers_the_april_question_and_declines_what_it_does_not_say(
    seed: HybridRetriever,
) -> None:
    bot = Bot(seed.settings, seed, None)
    april = bot.ask(APRIL)
    assert "108 attacks" in april.text and april.citations and not april.refused
    for question in NOT_IN_THE_ARTICLE:
        answer = bot.ask(question)
        assert answer.refused and not answer.citations, (question, answer.text)
        if answer.text == NOT_GIVEN:  # on the article's subject: the closest passages, for reading
            assert answer.related and all(r.source == "isis-resurgence-iraq.txt" for r in answer.related)
            assert "declined: no sentence of the passages holds" in answer.why
        else:  # the article never names Mosul: not covered at all
            assert answer.text == REFUSAL and not answer.related and answer.why.startswith("not covered")
    assert bot.ask(NOT_IN_THE_ARTICLE[1]).text == NOT_GIVEN
    off = bot.ask("How long should pasta cook to be al dente?")
    assert off.text == REFUSAL and not off.related and off.why.startswith("not covered")


def test_the_api_gives_related_passages_not_citations(tmp_path: Path, embedder: Embedder) -> None:
    settings = clean_settings(tmp_path / "data")
    services = indexed(build(settings, embedder=embedder), write_docs(tmp_path / "docs"))
    with app_client(services) as client:
        april = client.post("/api/ask", json={"question": APRIL}).json()
        assert "108 attacks" in april["answer"] and april["citations"] and april["related"] == []
        declined = client.post("/api/ask", json={"question": NOT_IN_THE_ARTICLE[1]}).json()  # born: no date of it
        assert declined["refused"] and declined["answer"] == NOT_GIVEN and declined["citations"] == []
        assert declined["related"] and declined["related"][0]["view_url"].startswith("/view/")
        assert client.get(declined["related"][0]["view_url"]).status_code == 200


CONVERSATIONS = Path(__file__).parent / "data" / "conversations"


@pytest.mark.parametrize("corpus", ["seed", "broad"])
def test_follow_ups_are_answered_from_the_conversation(corpus: str, request: pytest.FixtureRequest) -> None:
    """Issue 29: the conversational sets (a follow-up after one earlier turn) are answered, none refused; "Which
    newspaper does he work for?" after the answer naming Con Coflin is answered with the Telegraph, cited."""
    retriever: HybridRetriever = request.getfixturevalue(corpus)
    bot = Bot(retriever.settings, retriever, None)
    for item in items(CONVERSATIONS / f"{corpus}.jsonl"):
        answer = bot.ask(item["question"], [tuple(turn) for turn in item["history"]])
        assert not answer.refused and answer.citations, (item["id"], answer.text)
        if item["id"] == "conv-seed-01":
            assert "British Telegraph newspaper" in answer.text and "Con Coflin" in answer.query
