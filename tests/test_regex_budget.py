"""Every regex that reads document text runs in linear time: each is fed large adversarial strings under a budget.

The budget is generous (seconds for work that takes milliseconds when linear); the patterns these cases were
written against took from 2 s to minutes on the same strings (quadratic backtracking). The budget is a SIGALRM:
the regex engine checks for signals as it runs, so a pattern that backtracks fails the test instead of hanging it.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

import pytest

from bot.answer.chat import plain_quote, strip_preamble
from bot.answer.extractive import answer_type_factor
from bot.answer.markers import strip_markers
from bot.answer.supplies import supplies
from bot.answer.text import content_words, sentence_spans
from bot.documents.examples import example_questions, names_in
from index.chunking import Chunker
from index.loaders import markdown_title, normalise_text

BUDGET_S = 3.0
N = 100_000  # characters of each adversarial run: a quadratic pattern needs minutes for this


@contextmanager
def budget(seconds: float = BUDGET_S) -> Iterator[None]:
    def out_of_time(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError(f"took longer than {seconds} s: super-linear on this input")

    previous = signal.signal(signal.SIGALRM, out_of_time)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


ADVERSARIAL = {
    "hashes": "# a" + "#" * N + "x",
    "heading lines of hashes": ("# " + "#" * 200 + "x\n") * (N // 200),
    "em spaces": "a" + "\u2003" * N + "b",
    "newline and em space": ("\n" + "\u2003" * 3) * (N // 4),
    "newline space": "\n " * (N // 2),
    "hyphenated capitals": "A-" * (N // 2),
    "apostrophe capitals": "A'" * (N // 2),
    "al- prefixes": "al-A" * (N // 4),
    "unclosed markers": "[" + "1," * (N // 2),
    "open brackets": "[" * N,
    "markers after a stop": ". " + "[1] " * (N // 4) + "x",
    "stops and quotes": ('."' + '"' * 20 + " x") * (N // 24),
    "digits after newlines": ("\n" + "1" * 50) * (N // 51),
    "stars": "*" * N,
    "angle brackets": "<" * N,
    "dots": "." * N,
    "no spaces": "x" * N,
}

#: A question of each kind the answerer types (bot.answer.supplies).
ASKING = (
    "How many sites?",
    "How much does it cost?",
    "What year was it?",
    "What time does it open?",
    "When?",
    "How long is it?",
    "How tall is it?",
    "What temperature is it?",
    "How heavy is it?",
    "What is its area?",
    "What is the population of Elsen?",
    "Who founded Elsen?",
)

CHECKS: dict[str, Callable[[str], object]] = {
    "markdown title": markdown_title,
    "normalise_text": normalise_text,
    "sentence_spans": sentence_spans,
    "plain_quote (MARKER)": plain_quote,
    "strip_markers": strip_markers,
    "strip_preamble": strip_preamble,
    "names_in": names_in,
    "example_questions": lambda text: example_questions([("Title Here", text)]),
    "answer types": lambda text: [answer_type_factor(q, text) for q in ASKING],
    "supplies": lambda text: [supplies(q, text, text, text) for q in ASKING],
    "content_words": content_words,
    "chunker": lambda text: Chunker(800, 150).spans(text),
}


@pytest.mark.parametrize("check", list(CHECKS))
@pytest.mark.parametrize("case", list(ADVERSARIAL))
def test_document_text_regexes_are_linear(check: str, case: str) -> None:
    with budget():
        CHECKS[check](ADVERSARIAL[case])


def test_fixed_patterns_keep_their_meaning() -> None:
    assert markdown_title("intro\n## Getting Started ##\n") == "Getting Started"
    assert markdown_title("# C#\n") == "C#"
    assert markdown_title("#not-a-heading\n# \n#   ###\n") is None
    assert plain_quote("See [1] and [2, 3].") == "See (1) and (2, 3)."
    assert strip_markers("The bell rings [1]   [2].") == "The bell rings."
    text = "The bell rings. Ferries sail.\n- first item\n  \n2. second"
    assert [text[a:b] for a, b in sentence_spans(text)] == [
        "The bell rings.",
        "Ferries sail.",
        "- first item",
        "2. second",
    ]
    assert names_in("Yesterday Port Quill and al-Rashid Street met O'Brien-Smith Jones.") == [
        "Yesterday Port Quill",
        "al-Rashid Street",
        "O'Brien-Smith Jones",
    ]
