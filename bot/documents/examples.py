"""Example questions for a first-time visitor, drawn from the indexed text itself (deterministic).

Names that the documents mention most (runs of capitalised words) become "What do the documents say
about X?"; the first dated event becomes "What happened in June 2014?"; real titles become "What is
T about?".
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from bot.answer.text import MONTHS, STOPWORDS, YEAR

#: A capitalised word of at most 41 characters: unbounded, ``[A-Z][\w'’-]*\w`` is retried at every capital of a
#: long hyphenated run ("A-A-A-...") and takes quadratic time (25 s for 40 KB).
_NAME_WORD = r"(?:[A-Z][\w'’-]{0,39}\w|al-[A-Z]\w{0,40})"
_NAME = re.compile(rf"\b{_NAME_WORD}(?: {_NAME_WORD})+")
_DATE = re.compile(rf"\b(?:(?:{'|'.join(MONTHS)}) )?{YEAR}")
#: Capitalised only because they start a sentence or a heading, not part of a name.
_LEADING = STOPWORDS | {"according", "although", "however", "since", "while", "during", "last", "mr", "ms", "dr"}


def names_in(text: str) -> list[str]:
    """Multi-word names in ``text``, without a leading sentence-start word ("In April" is no name)."""
    names = []
    for match in _NAME.finditer(text):
        words = match.group().split()
        while words and (words[0].lower() in _LEADING or words[0] in MONTHS):
            words.pop(0)
        if len(words) >= 2:
            names.append(" ".join(words))
    return names


def _is_real_title(title: str) -> bool:
    """A heading or <title> (has capitals and spaces), not a file name turned into words."""
    return any(ch.isupper() for ch in title) and " " in title.strip() and len(title) <= 80


def example_questions(passages: Iterable[tuple[str, str]], limit: int = 4) -> list[str]:
    """Up to ``limit`` questions from (title, text) pairs, the same every time for the same corpus."""
    counts: Counter[str] = Counter()
    first_seen: dict[str, int] = {}
    titles: list[str] = []
    date: str | None = None
    for position, (title, text) in enumerate(passages):
        if _is_real_title(title) and title not in titles:
            titles.append(title)
        for name in names_in(text):
            counts[name] += 1
            first_seen.setdefault(name, position)
        if date is None:
            found = _DATE.search(text)
            date = found.group() if found else None
    ranked = sorted(counts, key=lambda name: (-counts[name], first_seen[name], -len(name.split()), name))
    chosen: list[str] = []
    for name in ranked:
        if not any(name in other or other in name for other in chosen):
            chosen.append(name)
    questions = [f"What do the documents say about {name}?" for name in chosen[: max(1, limit - 2)]]
    if date:
        questions.append(f"What happened in {date}?")
    questions += [f"What is {title} about?" for title in titles]
    return questions[:limit]
