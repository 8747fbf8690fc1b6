"""Sentences and words of answer and passage text: sentence spans (also of a stream), content words for overlap.

Also the calendar words more than one part looks for (the extractive answerer's "when" questions, the page's
example questions).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from index.sentences import sentence_spans
from index.term_support import stems

_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'-]*")
STOPWORDS = frozenset(
    "a an and are as at be been but by can could did do does for from had has have he her his how i if in into "
    "is it its of on or our she so than that the their them then there these they this those to was we were "
    "what when where which who whom why will with would you your about after also any more most not no only "
    "other over such up".split()
)

MONTHS = "January February March April May June July August September October November December".split()
#: A year docbot's texts speak of: 1500-2099.
YEAR = r"\b(?:1[5-9]|20)\d\d\b"


def content_words(text: str) -> list[str]:
    """Lower-cased words that carry meaning (no stop words), stemmed (Snowball) for overlap checks."""
    words = (word.removesuffix("'s") for word in _WORD.findall(text.lower().replace("’", "'")))
    return stems([word for word in words if word not in STOPWORDS and len(word) > 1])


def sentences_of_stream(pieces: Iterable[str]) -> Iterator[str]:
    """Re-cut a stream of text pieces into whole sentences (the last one when the stream ends)."""
    buffer = ""
    for piece in pieces:
        buffer += piece
        spans = sentence_spans(buffer)
        if len(spans) > 1:
            for lo, hi in spans[:-1]:
                yield buffer[lo:hi]
            buffer = buffer[spans[-1][0] :]
    if buffer.strip():
        yield buffer.strip()
