"""Whether a sentence supplies what a question asks for, not only talks about the same things.

Near its documents' subject a question can be covered and still not answered: "How many people live in Mosul?"
of an article that counts ISIS fighters in Mosul, "When was Abu Bakr al-Baghdadi born?" of one that never gives
his birth, "What is the annual budget of the Iraqi army?" of one that gives the army's strength. A sentence
supplies the answer when

- it holds the kind of thing asked for (:class:`AnswerType`): a number for "how many" or "how long", a sum of
  money for "how much does it cost" or "what is the budget of", a date or a time for "when" or "what time", a
  name for "who" other than the names the question itself gives;
- it, or a sentence beside it, names what the question says it asks about: the thing counted ("how many *days of
  sick leave*"), the thing asked for by name ("what *discount*", "which *port*"), the measure ("what is the
  *population* of"), the event dated or priced ("when was he *born*", "how much did it *cost*"), the deed of a
  "who" question ("who *funded* the survey");
- its passage holds what the question restricts the answer to: a month, a year, a number, and the names the
  question gives ("When was Varnholt's husband *Benedikt Horvath* born?" is not answered by Varnholt's birth).

The rules read the question's form only, never a list of subjects: they hold on any corpus. Every generator obeys
them: the extractive answerer quotes only such a sentence, and the grounding guard keeps only model sentences
whose supporting sentence is one.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bot.answer.text import MONTHS, YEAR, sentence_spans
from index.term_support import stems
from index.types import Passage

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
_NUMBER = re.compile(rf"\d|\b(?:{'|'.join(NUMBER_WORDS)})\b", re.I)
#: A sum of money: a currency sign or name, or "free".
_MONEY = re.compile(
    r"[€$£¥₹]|\b(?:euros?|pounds?|dollars?|pence|cents?|crowns?|francs?|kronor|kroner|krona|yen|rupees?|"
    r"shillings?|guineas?|EUR|USD|GBP|CHF|SEK|NOK|DKK|free|no charge)\b",
    re.I,
)
#: A number that is a sum of money, a share or a year: it does not count things ("how many employees" is not
#: €300, "how many sites" not "in 1987").
_NOT_A_COUNT = re.compile(
    r"[€$£¥₹]\s?\d[\d,.]{0,20}(?:\s?(?:k|m|bn|million|billion))?|(?<![\d,.])\d[\d,.]{0,20}\s?(?:%|per ?cent|percent|"
    r"euros?|pounds?|dollars?|pence|cents?|crowns?|EUR|USD|GBP)|\b(?:in|since|from|until|till|by|before|after|"
    r"during) (?:the )?(?:summer |winter |spring |autumn |early |late |mid-)?\d{3,4}\b|\b(?:summer|winter|spring|"
    r"autumn|year|siege|war|battle|fall|end|start|beginning|season) of \d{3,4}\b",
    re.I,
)
#: A date or a time: a year, a clock time, a day of the month, a span ("3 weeks", "the 1920s"), a month, a
#: weekday, a season, a time in words ("seven minutes past every hour"). Not any number: a version ("3.4.2") does
#: not say when.
_WHEN = re.compile(
    rf"{YEAR}|\b\d{{1,2}}[:.]\d\d\b|\b\d{{1,2}} ?(?:am|pm|a\.m\.|p\.m\.|o'clock)|\b\d+(?:st|nd|rd|th)\b"
    r"|\b\d+ ?(?:days?|weeks?|months?|years?|hours?|minutes?|centur(?:y|ies)|decades?)\b|\b\d+0s\b"
    r"|\b\d{1,2}/\d{1,2}\b|\bat \d{1,2}\b|\b\d{1,2} (?:" + "|".join(MONTHS) + ")"
    rf"|\b(?:{'|'.join(MONTHS + WHEN_WORDS + NUMBER_WORDS)})\b|\b(?:last|next|this) (?:week|month|year)\b",
    re.I,
)
#: A name: two or more capitalised words, not at the start of a sentence.
_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]+(?:[ -][A-Z][a-z]+)+")
_REASON = re.compile(
    r"\b(?:because|due to|owing to|thanks to|as a result|caused by|resulting from|led (?:to|him|her|them)|"
    r"took advantage|taking advantage|exploit\w*|in order to|so that)\b",
    re.I,
)
#: Measures whose value is a number with a unit ("How tall...", "What temperature..."): the unit says what it
#: measures, so the measure's own word is not looked for beside it.
_UNIT_MEASURES = "height length area size width depth weight distance temperature speed age altitude elevation"
#: Measures whose value is a bare number: the sentence must name the measure too ("What is the population of
#: Mosul?" is not answered by a count of fighters in Mosul).
_COUNT_MEASURES = "population capacity attendance membership headcount"
_MEASURES = f"{_UNIT_MEASURES} {_COUNT_MEASURES}"
#: Words that ask for a sum of money.
_MONEY_WORDS = (
    r"cost|costs|price|prices|priced|pay|pays|paid|paying|spend|spends|spent|charge|charges|charged|fee|fees|"
    r"budget|revenue|turnover|salary|salaries|wage|wages|earn|earns|earned|earnings|income|profit|worth|money|"
    r"fare|fares|rent"
)
#: "how", also after a preposition ("At how many sites...").
_HOW = r"(?:(?:at|in|on|for|by|from|to|with) )?how"
_ASKS_MONEY = re.compile(rf"\b(?:{_MONEY_WORDS})\b", re.I)
_AUX = r"(?:is|was|are|were|did|does|do|will|would|can|could|has|have|had|should|must)"
_WHAT_MEASURE = re.compile(
    rf"\b(?:what|which) (?:{_AUX} (?:the |its |their |his |her |a )?(?:[\w'’]+ ){{0,4}}?|(?:\w+ )?)"
    rf"((?:{'|'.join(_MEASURES.split())}|{_MONEY_WORDS}))\b",
    re.I,
)


@dataclass(frozen=True, slots=True)
class AnswerType:
    """What a question asks for (``asks``), whether a sentence holds that kind of answer (``held_by``), and whether
    a sentence without it cannot be the answer (a "why" is answered in too many ways to require one)."""

    asks: Callable[[str], bool]
    held_by: Callable[[str], bool]
    required: bool
    label: str


def _search(pattern: str) -> Callable[[str], bool]:
    compiled = re.compile(pattern, re.I)
    return lambda text: compiled.search(text) is not None


def _asks_money(question: str) -> bool:
    if re.match(r"\s*how much\b", question, re.I):
        return _ASKS_MONEY.search(question) is not None
    measure = _WHAT_MEASURE.search(question)
    return measure is not None and _ASKS_MONEY.fullmatch(measure.group(1)) is not None


def _asks_number(question: str) -> bool:
    return (
        re.search(
            rf"^\s*{_HOW} (?:many|much|long|far|old|tall|high|big|large|deep|wide|heavy|fast)\b"
            r"|\bwhat (?:number|percentage|share|proportion|amount)\b|\b(?:what|which) (?:\w+ )?rate\b",
            question,
            re.I,
        )
        is not None
        or _WHAT_MEASURE.search(question) is not None
    )


def _asks_count(question: str) -> bool:
    return re.match(rf"\s*{_HOW} many\b", question, re.I) is not None


def _holds_count(sentence: str) -> bool:
    return _NUMBER.search(_NOT_A_COUNT.sub(" ", sentence)) is not None


_SPAN = r"(?:seconds?|minutes?|mins?|hours?|hrs?|days?|nights?|weeks?|months?|years?|decades?|centur(?:y|ies))"
_LENGTH = (
    r"(?<!square )(?<!sq )\b(?:m|km|cm|mm|metres?|meters?|kilometres?|kilometers?|miles?|feet|foot|ft|inches|"
    r"yards?)\b"
)
_WEIGHT = r"\b(?:kg|g|grams?|kilos?|kilograms?|tonnes?|tons?|pounds?|lbs?|ounces?|oz|stone)\b"


def _number_with(unit: str) -> Callable[[str], bool]:
    """A sentence holding a number with one of the units (a measure is given in its unit)."""
    with_unit = re.compile(rf"(?:(?<![\d,.])\d|\b(?:{'|'.join(NUMBER_WORDS)})\b)[\d,.\s-]{{0,20}}(?:{unit})", re.I)
    return lambda text: with_unit.search(text) is not None


def _asks_measure(asks: str) -> Callable[[str], bool]:
    """A question asking for a number about a measure (``asks``: how the question names it)."""
    names = re.compile(asks, re.I)
    return lambda question: _asks_number(question) and names.search(question) is not None


#: Measures given in a unit: what a question asks and the units of its answer. The first that fits decides.
_MEASURED = (
    (r"\btemperature\b|^\s*how (?:hot|cold|warm)\b", r"°|\bdegrees?\b", "a temperature"),
    (rf"^\s*{_HOW} long\b", rf"{_LENGTH}|\b{_SPAN}\b", "a length or a duration"),
    (
        r"^\s*how (?:tall|high|far|deep|wide)\b|\b(?:height|length|depth|width|distance|altitude|elevation)\b",
        _LENGTH,
        "a length",
    ),
    (r"^\s*how heavy\b|\bweigh(?:s|t)?\b", _WEIGHT, "a weight"),
    (r"\barea\b", r"\b(?:hectares?|ha|acres?|square|sq)\b|km²|m²", "an area"),
)
#: A year of any age ("1184", "the 1920s", "300 BC").
_A_YEAR = r"\b\d{3,4}s?\b|\b\d+ ?(?:BC|BCE|AD|CE)\b"
_CLOCK = (
    r"\b\d{1,2}[:.]\d\d\b|\b\d{1,2} ?(?:am|pm|a\.m\.|p\.m\.|o'clock)|\b(?:noon|midday|midnight|dusk|dawn|sunset|"
    r"sunrise)\b"
)

ANSWER_TYPES = (
    AnswerType(_asks_money, lambda s: _MONEY.search(s) is not None, True, "a sum of money"),
    AnswerType(_asks_count, _holds_count, True, "a number that counts"),
    AnswerType(_search(r"\b(?:what|which) year\b"), _search(_A_YEAR), True, "a year"),
    AnswerType(_search(r"\b(?:what|which) time\b"), _search(_CLOCK), True, "a time of day"),
    *(AnswerType(_asks_measure(asks), _number_with(unit), True, label) for asks, unit, label in _MEASURED),
    AnswerType(
        _search(r"^\s*(?:when|how often)\b|\b(?:what|which) (?:year|date|month|day|time)\b|\bin which year\b"),
        lambda s: _WHEN.search(s) is not None,
        True,
        "a date or a time",
    ),
    AnswerType(_asks_number, lambda s: _NUMBER.search(s) is not None, True, "a number"),
    AnswerType(_search(r"^\s*who\b"), lambda s: _NAME.search(s) is not None, True, "a name"),
    AnswerType(
        _search(r"^\s*why\b|\bwhat (?:factors|reasons?|causes?|led)\b|\bfor what reason\b"),
        lambda s: _REASON.search(s) is not None,
        False,
        "a reason",
    ),
)
_AUXILIARIES = frozenset("is was are were did does do has have had will would can could should must".split())
_FILLER = frozenset("a an the of per for to in on at by and or its their his her each every".split())
#: Nouns after "what"/"which" that say what kind of answer is wanted, not what it is about ("What role did ...").
_GENERIC = frozenset(
    "kind kinds type types sort sorts form forms role roles way ways part parts aspect aspects factor factors reason "
    "reasons thing things method methods step steps example examples purpose idea ideas point main key lesson "
    "lessons advice evidence argument arguments problem problems issue issues challenge challenges benefit "
    "benefits advantage advantages disadvantages effect effects impact impacts consequence consequences change "
    "changes approach approaches strategy strategies view views topic topics theme themes concept concepts "
    "information details detail specific specifically other else year date month day time number percentage share "
    f"proportion amount rate happened happens colour color shape language {_UNIT_MEASURES}".split()
)
_WHAT_TIME = r"(?:in |on )?(?:what|which) (?:year|date|month|day)"
#: Where a question names what it asks about: the thing counted, the event a date or a price is asked of.
_ASKED_ABOUT = (
    re.compile(rf"^\s*{_HOW} (?:many|much) (\w+)", re.I),
    re.compile(r"^\s*how much (?:is|was|are|were|did|does|do|will) .+ (\w+)\W*$", re.I),
    # "when was he born", and the same asked as "in what year was he born"
    re.compile(rf"^\s*(?:when|{_WHAT_TIME}) (?:is|was|were|did|does|do|will) .+ (\w+)\W*$", re.I),
    # the deed of a "who" question: "who funded the survey", "the mason who designed the keep"
    re.compile(r"\bwho (\w+ed)\b", re.I),
    # what a price is asked of: "how much does it cost to park"
    re.compile(r"\bcosts? to (\w+)", re.I),
)
#: The whole thing counted or named: "how many days of paid sick leave do ...", "what interest rate is ...".
_ASKED_PHRASE = re.compile(rf"^\s*(?:{_HOW} many|what|which) ((?:[a-z]+[ -]){{1,5}}?){_AUX}\b", re.I)
_RESTRICTION = re.compile(rf"{YEAR}|\b(?:{'|'.join(MONTHS)})\b|\b\d[\d,.]*\b", re.I)
_WORD = re.compile(r"[^\W_]+(?:[-'’][^\W_]+)*")
#: A word written with a capital inside a question: part of a name ("Norrbeck", "Benedikt Horvath").
_CAPITALISED = re.compile(r"(?<!^)(?<![.!?]\s)\b[A-Z][\w-]*[a-z0-9][\w-]*|\b[A-Z]{2,}\b")
#: The conversation's words a follow-up's query carries at its end (bot.answer.chat.condense_deterministic).
_CONTEXT = re.compile(r"\s*\([^()]*\)\s*$")
_NOT_NAMES = frozenset(
    "i the a an of in on at to for and or is was are were did does do what which who when where why how".split()
)


def asked_kind(question: str) -> AnswerType | None:
    """What a sentence answering ``question`` must hold (a number, a date, a name), or None for an open question."""
    return next((kind for kind in ANSWER_TYPES if kind.required and kind.asks(question)), None)


@functools.lru_cache(maxsize=4096)
def asked_about(question: str) -> frozenset[str]:
    """The stems of what the question names as asked about: the thing counted ("how many *days of sick leave*"),
    the thing or measure named ("what *discount*", "what is the *population* of"), the event dated or priced
    ("when was he *born*", "how much did it *cost*"), the deed of a "who" ("who *funded*")."""
    explicit = [found for pattern in _ASKED_ABOUT for match in pattern.finditer(question) for found in match.groups()]
    phrase = _ASKED_PHRASE.search(question)
    if phrase is not None:
        named = [w for w in re.split(r"[ -]", phrase.group(1).strip()) if w.islower() and not w.endswith("ly")]
        counted = re.match(rf"\s*{_HOW} many", question, re.I) is not None
        if named and (counted or named[0] not in _GENERIC):
            explicit += [w for w in named if counted or w not in _GENERIC]
    measure = _WHAT_MEASURE.search(question)
    if measure is not None and measure.group(1).lower() in _COUNT_MEASURES.split():
        explicit.append(measure.group(1))
    words = [word.lower() for word in explicit if word and word.islower()]
    return frozenset(_lemma_stems([w for w in words if w not in _AUXILIARIES and w not in _FILLER]))


#: Irregular forms of verbs questions ask with, so that "how much is *paid*" finds "full *pay*" (the stemmer
#: leaves them apart).
_IRREGULAR = {
    "paid": "pay",
    "spent": "spend",
    "built": "build",
    "won": "win",
    "held": "hold",
    "led": "lead",
    "made": "make",
    "sold": "sell",
    "bought": "buy",
    "taught": "teach",
    "wrote": "write",
    "written": "write",
    "began": "begin",
    "begun": "begin",
    "gave": "give",
    "given": "give",
    "took": "take",
    "taken": "take",
    "brought": "bring",
    "founded": "found",
    "birth": "born",
    "kept": "keep",
    "met": "meet",
    "ran": "run",
    "left": "leave",
}


def _lemma_stems(words: list[str]) -> list[str]:
    return stems([_IRREGULAR.get(word, word) for word in words])


@functools.lru_cache(maxsize=4096)
def _text_stems(text: str) -> frozenset[str]:
    """The stems of a text's words, irregular verb forms first brought to their plain form."""
    return frozenset(_lemma_stems(_WORD.findall(text.lower())))


def _held(stem: str, held: frozenset[str]) -> bool:
    """Whether ``held`` has ``stem``, or the noun of the one who does it ("score" in "scorer", "fund" in
    "funder", "conduct" in "conductor")."""
    return stem in held or any(stem + ending in held for ending in ("r", "er", "or"))


@functools.lru_cache(maxsize=4096)
def question_names(question: str) -> tuple[frozenset[str], ...]:
    """The names the question gives (runs of words it writes with a capital inside it: "Norrbeck", "Benedikt
    Horvath"), each as the stems of its words. Not the conversation's words a follow-up's query carries in
    brackets at its end ("How many loaves does it hold? (Cyril Pender built oven)"): they say what it is about,
    not whose value is asked."""
    names = []
    asked = _CONTEXT.sub("", question)
    for run in re.finditer(rf"(?:{_CAPITALISED.pattern})(?:[ -](?:{_CAPITALISED.pattern}))*", asked):
        words = [w.lower() for w in re.findall(r"[\w]+", run.group(0))]
        kept = [w for w in words if w not in _NOT_NAMES]
        if kept:
            names.append(frozenset(stems(kept)))
    return tuple(names)


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


def _holds_kind(question: str, kind: AnswerType, sentence: str) -> bool:
    if kind.label == "a name":  # a name other than those the question gives
        given = {w.lower() for w in _WORD.findall(question)}
        return any(not {w.lower() for w in _WORD.findall(name)} <= given for name in _NAME.findall(sentence))
    return kind.held_by(sentence)


def supplies(
    question: str, sentence: str, around: str, passage: str, elsewhere: Sequence[str] = (), lead: str = ""
) -> bool:
    """Whether ``sentence`` supplies what ``question`` asks for; ``around``: the sentence with its neighbours and
    its document's title (what it is about may be named just before it), ``passage``: the whole passage with its
    document's title and the passages that lead into it,
    ``elsewhere``: the other passages found for the question (with their titles). A name the question gives must
    be in the passage when the documents know it (some passage holds it): "When was Varnholt's husband Benedikt
    Horvath born?" is not answered by Varnholt's birth. A name none of them holds is left to the coverage rule."""
    kind = asked_kind(question)
    if kind is not None and not _holds_kind(question, kind, sentence):
        return False
    if not restrictions(question) <= {found.lower() for found in _RESTRICTION.findall(passage)}:
        return False
    about = asked_about(question)
    if kind is not None or about:  # a question after one value: its names say whose
        own = _text_stems(passage) if kind is None else _text_stems(f"{around}\n{lead}")
        texts = [_text_stems(text) for text in (passage, *elsewhere)]
        for name in question_names(question):
            if kind is not None and not any(name <= held for held in texts):
                return False  # a value of something the documents never name ("How high is Mount Everest?")
            if not name & own and any(name & held for held in texts):
                return False
    counted = _counted(question)
    if counted is not None and not _held(counted, _text_stems(sentence)):
        return False
    near = _text_stems(around)
    return all(_held(stem, near) for stem in about)


def _counted(question: str) -> str | None:
    """The stem of the thing a "how many" question counts ("how many *visitors*"): the counting sentence names it."""
    found = re.match(rf"\s*{_HOW} many (\w+)", question, re.I)
    if found is None:
        return None
    phrase = _ASKED_PHRASE.search(question)  # "how many survey *sites* were ...": the phrase's last word
    word = phrase.group(1).split()[-1] if phrase is not None and phrase.group(1).strip() else found.group(1)
    return _lemma_stems([word.lower()])[0]


def supplies_at(question: str, passages: Sequence[Passage], index: int, span: tuple[int, int]) -> bool:
    """Whether the sentence at ``span`` of ``passages[index]`` supplies what ``question`` asks for (its neighbours
    count for what it is about; the other passages tell which of the question's names the documents know)."""
    text = passages[index].text
    lo, hi = span
    spans = sentence_spans(text)
    before = max((start for start, end in spans if end <= lo), default=lo)
    after = min((end for start, end in spans if start >= hi), default=hi)
    this = passages[index]
    led_in = [p for p in passages if _leads_into(p, this)]
    lead = "\n".join(p.text for p in led_in)
    elsewhere = [f"{p.title}\n{p.text}" for n, p in enumerate(passages) if n != index and p not in led_in]
    around = f"{this.title}\n{text[before:after]}"
    return supplies(question, text[lo:hi], around, f"{this.title}\n{text}\n{lead}", elsewhere, lead)


#: A passage that ends at most this many characters before another one of the same document leads into it: the
#: names it gives (a section's heading, its first sentence) are what the next one is about.
LEAD_IN_CHARS = 1500


def _leads_into(before: Passage, passage: Passage) -> bool:
    return (
        before.source == passage.source
        and before.page == passage.page
        and before.start < passage.start
        and passage.start - before.end <= LEAD_IN_CHARS
    )


def unsupplied_reason(question: str) -> str:
    """What a sentence had to hold to answer ``question``, for the explanation of a declined one."""
    needs = []
    kind = asked_kind(question)
    if kind is not None:
        needs.append(kind.label)
    about = asked_about(question)
    if about:
        needs.append("the words " + ", ".join(sorted(about)))
    places = sorted(restrictions(question)) + [" ".join(sorted(name)) for name in question_names(question)]
    if places:
        needs.append("in its passage " + ", ".join(places))
    return "no sentence of the passages holds " + (" and ".join(needs) if needs else "what is asked")
