"""Whether a sentence supplies what a question asks for, not only talks about the same things.

Near its documents' subject a question can be covered and still not answered: "How many people live in Mosul?"
of an article that counts ISIS fighters in Mosul, "When was Abu Bakr al-Baghdadi born?" of one that never gives
his birth. A sentence supplies the answer when

- it holds the kind of thing asked for: a number for "how many", a date for "when", a name for "who";
- it, or a sentence beside it, names what the question says it asks about: the thing counted ("how many
  *people*"), the event dated or priced ("when was he *born*", "how much did it *cost*"). Other words are
  retrieval's to weigh, names included. ("What is the annual *budget* of..." is not held to its attribute: open
  "what is the X of" questions are answered in other words too often; measured in docs/eval.md);
- its passage holds what the question restricts the answer to: a month, a year, a number.

Every generator obeys it: the extractive answerer quotes only such a sentence, and the grounding guard keeps only
model sentences whose supporting sentence is one.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from bot.answer.text import MONTHS, YEAR, sentence_spans
from index.term_support import stems, text_stems

#: Numbers as words ("twenty-six weeks", "a dozen", "three thousand").
NUMBER_WORDS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundreds? thousands? "
    "millions? billions? dozens? half twice double triple"
).split()


#: Words that say when, beside months and numbers (digits or words: "at seven minutes past every hour"): days,
#: seasons, times of day, spans of time.
WHEN_WORDS = (
    "Monday Tuesday Wednesday Thursday Friday Saturday Sunday weekdays? weekends? spring summer autumn fall winter "
    "morning afternoon evening night noon midnight dawn dusk daily weekly monthly yearly annually century decade "
    "hours? hourly minutes? ago yesterday today tomorrow"
).split()


class AnswerType(NamedTuple):
    """What a question asks for (``asks``), what a sentence holding that kind of answer looks like (``holds``), and
    whether a sentence without it cannot be the answer (a "why" is answered in too many ways to require one)."""

    asks: re.Pattern[str]
    holds: re.Pattern[str]
    required: bool
    label: str


ANSWER_TYPES = (
    AnswerType(
        re.compile(r"^\s*how (?:many|much)\b|\bwhat (?:number|percentage|share)\b", re.I),
        re.compile(rf"\d|\b(?:{'|'.join(NUMBER_WORDS)})\b", re.I),
        True,
        "a number",
    ),
    AnswerType(
        re.compile(r"^\s*when\b|\bwhat (?:year|date|month|day)\b|\bin which year\b", re.I),
        re.compile(
            rf"\d|\b(?:{'|'.join(MONTHS + WHEN_WORDS + NUMBER_WORDS)})\b|\b(?:last|next|this) (?:week|month|year)\b",
            re.I,
        ),
        True,
        "a date or a time",
    ),
    AnswerType(
        re.compile(r"^\s*who\b", re.I),
        re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]+(?:[ -][A-Z][a-z]+)+"),
        True,
        "a name",
    ),
    AnswerType(
        re.compile(r"^\s*why\b|\bwhat (?:factors|reasons?|causes?|led)\b|\bfor what reason\b", re.I),
        re.compile(
            r"\b(?:because|due to|owing to|thanks to|as a result|caused by|resulting from|led (?:to|him|her|them)|"
            r"took advantage|taking advantage|exploit\w*|in order to|so that)\b",
            re.I,
        ),
        False,
        "a reason",
    ),
)
_AUXILIARIES = frozenset("is was are were did does do has have had will would can could".split())
_WHAT_TIME = r"(?:in |on )?(?:what|which) (?:year|date|month|day)"
#: Where a question names what it asks about: the thing counted, the event a date or a price is asked of.
_ASKED_ABOUT = (
    re.compile(r"^\s*how (?:many|much) (\w+)", re.I),
    re.compile(r"^\s*how much (?:is|was|are|were|did|does|do|will) .+ (\w+)\W*$", re.I),
    # "when was he born", and the same asked as "in what year was he born"
    re.compile(rf"^\s*(?:when|{_WHAT_TIME}) (?:is|was|were|did|does|do|will) .+ (\w+)\W*$", re.I),
)
_RESTRICTION = re.compile(rf"{YEAR}|\b(?:{'|'.join(MONTHS)})\b|\b\d[\d,.]*\b", re.I)
_WORD = re.compile(r"[^\W_]+(?:[-'’][^\W_]+)*")


def asked_kind(question: str) -> AnswerType | None:
    """What a sentence answering ``question`` must hold (a number, a date, a name), or None for an open question."""
    return next((kind for kind in ANSWER_TYPES if kind.required and kind.asks.search(question)), None)


def asked_about(question: str) -> set[str]:
    """The stems of what the question names as asked about: the thing counted ("how many *people*"), the event
    dated or priced ("when was he *born*", "how much did it *cost*")."""
    explicit = [found for pattern in _ASKED_ABOUT for match in pattern.finditer(question) for found in match.groups()]
    words = [word.lower() for word in explicit if word and word.islower()]
    return {stem for word, stem in zip(words, stems(words), strict=True) if word not in _AUXILIARIES}


def restrictions(question: str) -> set[str]:
    """The months, years and numbers a question restricts its answer to, lower-cased."""
    return {found.lower() for found in _RESTRICTION.findall(question)}


def holds_share(sentence: str, words: set[str]) -> float:
    """The share of ``words`` (lower-cased, as :func:`restrictions` gives them) that ``sentence`` holds (0 for
    none)."""
    if not words:
        return 0.0
    held = {w.lower() for w in _WORD.findall(sentence)}
    return len(words & held) / len(words)


def supplies(question: str, sentence: str, around: str, passage: str) -> bool:
    """Whether ``sentence`` supplies what ``question`` asks for; ``around``: the sentence with its neighbours (what
    it is about may be named just before it), ``passage``: the whole passage."""
    kind = asked_kind(question)
    if kind is not None and not kind.holds.search(sentence):
        return False
    if not restrictions(question) <= {found.lower() for found in _RESTRICTION.findall(passage)}:
        return False
    return asked_about(question) <= text_stems(around)  # the words around the sentence, stemmed the same way


def supplies_at(question: str, passage: str, span: tuple[int, int]) -> bool:
    """Whether the sentence at ``span`` of ``passage`` supplies what ``question`` asks for (its neighbours count for
    what it is about)."""
    lo, hi = span
    spans = sentence_spans(passage)
    before = max((start for start, end in spans if end <= lo), default=lo)
    after = min((end for start, end in spans if start >= hi), default=hi)
    return supplies(question, passage[lo:hi], passage[before:after], passage)


def unsupplied_reason(question: str) -> str:
    """What a sentence had to hold to answer ``question``, for the explanation of a declined one."""
    needs = []
    kind = asked_kind(question)
    if kind is not None:
        needs.append(kind.label)
    about = asked_about(question)
    if about:
        needs.append("the words " + ", ".join(sorted(about)))
    if restrictions(question):
        needs.append("in its passage " + ", ".join(sorted(restrictions(question))))
    return "no sentence of the passages holds " + (" and ".join(needs) if needs else "what is asked")
