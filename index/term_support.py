"""How much of what a question names the retrieved passages hold: its term support.

Each term of the question weighs by how rare its word is in English at large (``wordfreq``'s Zipf scale), not in
the index: "the", "which", "people" weigh nothing, "budget" some, "Everest" or "al dente" most. So a question's
support does not depend on what the rest of the corpus is about, and a wide corpus (a wiki about everything)
cannot lift a question that names things its passages never mention. Words are compared by their stems.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterable

_stemmers = threading.local()
#: Words at least this common (Zipf 6: "which", "people", "many") say nothing about what a question is about.
COMMON_ZIPF = 6.0
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
#: Words that say what kind of question it is or what to do with the answer, not what it is about ("Describe...",
#: "According to the article...", "Provide examples").
_QUESTION_WORDS = frozenset(
    "what which who whom whose when where why how many much long often does did do is are was were can could should "
    "would will the a an of in on at to for from by with about and or tell me please there "
    "describe described describes discuss discussed discusses explain explained explains identify provide give "
    "examples example mention mentioned mentions according context significance role impact discuss "
    "author authors essay article document documents text passage passages paper report writer writes wrote "
    "quote quoted quotes cite cited cites say says said".split()
)


@functools.lru_cache(maxsize=65536)
def _weight(word: str) -> float:
    from wordfreq import zipf_frequency

    return max(0.0, COMMON_ZIPF - zipf_frequency(word, "en"))


def stems(words: Iterable[str]) -> list[str]:
    """The words' stems (lower-case words in; Snowball English, as the index stems them). A PyStemmer object is not
    thread-safe: each thread (a server answers on several) has its own."""
    stemmer = getattr(_stemmers, "english", None)
    if stemmer is None:
        import Stemmer

        stemmer = _stemmers.english = Stemmer.Stemmer("english")
    return list(stemmer.stemWords(list(words)))


def question_terms(question: str) -> dict[str, float]:
    """The question's terms (stems) with their weights; question words and common words left out."""
    words = [w for w in _WORD.findall(question.lower()) if w not in _QUESTION_WORDS]
    weights: dict[str, float] = {}
    for word, stem in zip(words, stems(words), strict=True):
        weight = _weight(word)
        if weight > 0:
            weights[stem] = max(weight, weights.get(stem, 0.0))
    return weights


def text_stems(text: str) -> set[str]:
    return set(stems(_WORD.findall(text.lower())))


def term_support(question: str, texts: Iterable[str]) -> float:
    """The weighted share of the question's terms that ``texts`` hold (1.0 for a question naming nothing rare)."""
    weights = question_terms(question)
    total = sum(weights.values())
    if not total:
        return 1.0
    held: set[str] = set()
    for text in texts:
        held |= text_stems(text)
    return sum(weight for stem, weight in weights.items() if stem in held) / total


def missing_terms(question: str, texts: Iterable[str]) -> list[str]:
    """The question's weighted words (as written) that ``texts`` do not hold, rarest first."""
    words = [w for w in _WORD.findall(question.lower()) if w not in _QUESTION_WORDS]
    held: set[str] = set()
    for text in texts:
        held |= text_stems(text)
    missing = {word: _weight(word) for word, stem in zip(words, stems(words), strict=True) if stem not in held}
    return sorted((w for w, weight in missing.items() if weight > 0), key=lambda w: -missing[w])
