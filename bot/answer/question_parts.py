"""The parts of a question that each want an answer: "Describe X. What was Y, and why did Z?" asks three things.

Statements that set the scene ("In the essay, the author mentions his early jobs.") ask nothing on their own;
they stay in the whole question, which every part is scored with, but get no answer of their own.
"""

from __future__ import annotations

import re

from bot.answer.text import content_words, sentence_spans

_ASKING = re.compile(
    r"^\s*(?:what|which|who|whom|whose|when|where|why|how|is|are|was|were|do|does|did|can|could|should|would|will|"
    r"has|have|had|describe|explain|discuss|identify|name|list|compare|contrast|provide|give|analy[sz]e|"
    r"summari[sz]e|choose|tell|according|based|in what|to what)\b",
    re.IGNORECASE,
)
#: Where one asking sentence turns to a second question: "... and how did he ...", "...? What ...".
_TURN = re.compile(
    r",?\s+and\s+(?=(?:what|which|who|when|where|why|how|whether|did|does|do|is|are|was|were)\b)"
    r"|;\s+|\?\s+",
    re.IGNORECASE,
)
#: A part needs this many content words to be worth answering on its own ("and why?" is not).
MIN_PART_WORDS = 2


def question_parts(question: str) -> list[str]:
    """The asking parts of ``question`` in order; the whole question when it asks one thing (or nothing clearly)."""
    parts: list[str] = []
    for lo, hi in sentence_spans(question):
        sentence = question[lo:hi]
        if not (sentence.rstrip().endswith("?") or _ASKING.search(sentence)):
            continue
        for piece in _TURN.split(sentence):
            piece = piece.strip(" ,;")
            if len(content_words(piece)) >= MIN_PART_WORDS:
                parts.append(piece)
    return parts if len(parts) > 1 else [question]
