"""What a sentence says beyond the question: its content words that the question (and the sentences already
chosen) do not have. A sentence that only echoes the question ("There are a number of factors that explain the
re-emergence of the Islamic State.") carries almost none; the one that names the factors carries many."""

from __future__ import annotations

from collections.abc import Iterable

from bot.answer.text import content_words

#: A sentence carrying fewer new content words than this says nothing the question did not.
ECHO_WORDS = 2


def new_words(sentence: str, known: Iterable[str]) -> set[str]:
    """The content words of ``sentence`` found in none of the ``known`` texts."""
    seen = {word for text in known for word in content_words(text)}
    return set(content_words(sentence)) - seen


def echoes(sentence: str, question: str) -> bool:
    """Whether ``sentence`` says next to nothing beyond ``question``."""
    return len(new_words(sentence, [question])) < ECHO_WORDS
