"""``docbot ask`` and ``docbot chat`` as a user runs them: real processes over a real index of the seeds."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from answer_fixtures import SEED_DOC, write_docs
from live import child_env, free_port

from bot.answer.chat import REFUSAL
from index.loaders import load_file

pytestmark = pytest.mark.server

DOCBOT = str(Path(sys.executable).with_name("docbot"))
FIGHTERS = "How many ISIS fighters are in Iraq?"
#: ``[n] title (source, chars a-b)`` or ``[n] title (source, page p, chars a-b)``
SOURCE_LINE = re.compile(r"^\[(\d+)\] (.+) \(([^,]+)(?:, page (\d+))?, chars (\d+)-(\d+)\)$")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a user whose index holds the seeds (built with ``docbot index``)."""
    root = tmp_path_factory.mktemp("cli")
    env = child_env()
    env["DOCBOT_DATA_DIR"] = str(root / "data")
    docbot(env, "index", str(write_docs(root / "docs")))
    return env


def docbot(
    env: dict[str, str], *args: str, stdin: str | None = None, code: int = 0
) -> subprocess.CompletedProcess[str]:
    cwd = Path(env["DOCBOT_DATA_DIR"]).parent
    done = subprocess.run([DOCBOT, *args], env=env, input=stdin, capture_output=True, text=True, timeout=300, cwd=cwd)
    assert done.returncode == code, done.stderr
    return done


def seed_text() -> str:
    return load_file(SEED_DOC, SEED_DOC.name, max_bytes=10**7).documents[0].text


def test_ask_prints_the_answer_then_each_source_with_its_quote(env: dict[str, str]) -> None:
    lines = docbot(env, "ask", FIGHTERS).stdout.splitlines()
    answer, blank, source, quote = lines
    assert "between two and three thousand" in answer and answer.endswith("[1]")
    assert blank == ""
    number, title, file, page, start, end = SOURCE_LINE.match(source).groups()  # type: ignore[union-attr]
    assert (number, title, file, page) == ("1", "isis resurgence iraq", SEED_DOC.name, None)
    assert quote.startswith('    "') and quote.endswith('"')
    assert seed_text()[int(start) : int(end)] == quote.strip()[1:-1]


def test_ask_json_prints_the_structured_answer(env: dict[str, str]) -> None:
    answer = json.loads(docbot(env, "ask", "--json", FIGHTERS).stdout)
    assert answer["question"] == FIGHTERS and answer["generator"] == "extractive"
    assert not answer["refused"] and answer["notice"] is None and answer["unsupported"] == []
    assert set(answer["timings"]) == {"retrieval_ms", "generation_ms", "total_ms"}
    (citation,) = answer["citations"]
    assert citation["number"] == 1 and citation["source"] == SEED_DOC.name and citation["supported"]
    assert seed_text()[citation["quote_start"] : citation["quote_end"]] == citation["quote"]
    assert citation["quote"] in citation["passage"] and citation["quote"] in answer["text"]


def test_ask_refuses_what_the_documents_do_not_cover(env: dict[str, str]) -> None:
    assert docbot(env, "ask", "What is the capital of Libya?").stdout == REFUSAL + "\n"
    explained = docbot(env, "ask", "--explain", "What is the capital of Libya?")
    assert explained.stdout == REFUSAL + "\n" and "why: not covered: term support" in explained.stderr
    assert "< 1.25" in explained.stderr


def test_ask_with_an_unreachable_model_notes_the_fallback(env: dict[str, str]) -> None:
    dead = {**env, "DOCBOT_OPENAI_BASE_URL": f"http://127.0.0.1:{free_port()}/v1"}
    done = docbot(dead, "ask", "--generator", "openai", FIGHTERS)
    assert "between two and three thousand" in done.stdout
    assert "note: The openai:docbot-local model failed (" in done.stderr
    assert "answered from the passages instead" in done.stderr


def test_ask_rejects_an_empty_question(env: dict[str, str]) -> None:
    assert "the question is empty" in docbot(env, "ask", "  ", code=2).stderr


def test_chat_follows_up_on_the_conversation_and_starts_over(env: dict[str, str]) -> None:
    follow_up = "Where did they escape from?"
    stdin = "\n".join([FIGHTERS, follow_up, "new", follow_up]) + "\n"
    turns = docbot(env, "chat", stdin=stdin).stdout.split("you> ")
    assert turns[0].startswith("docbot (extractive).")
    first, second, reset, again, last = turns[1:]
    assert first.startswith("bot> ") and "between two and three thousand" in first
    assert "escaping from prisons in Syria" in second and "[1] isis resurgence iraq (" in second
    assert reset.startswith("(new conversation)")
    alone = docbot(env, "ask", follow_up).stdout.strip()
    assert again.strip() == f"bot> {alone}"  # after "new", the same words are a question of their own
    assert last == "\n"  # end of input ends the chat
