"""Clean text for every loader, and PDF page text cleaned with a map back to the text as extracted.

Every loader's text goes through :func:`fold_chars`: ligatures (``ﬁ`` ``ﬂ`` ...) become their letters, odd spaces
(no-break, thin, en/em, ideographic ...) plain spaces, and invisible marks (soft hyphens, zero-width spaces, word
joiners, byte-order marks) are dropped. :func:`tidy_text` then settles one newline convention and the white space.

A PDF page's text, as pypdf extracts it, is a line per printed line. :func:`clean_pdf_pages` reads it like a person:

- **running lines**: a line that, with its digits counted as one sign (``Page 3 of 9`` = ``Page 7 of 9``), stands
  among the first or last :data:`BAND` lines of more than half of the sampled pages (:func:`sample`, at least
  :data:`MIN_PAGES` of them) is a running header, footer or page number, and is dropped wherever it stands there;
- **hyphens at line ends**: a letter or digit, a hyphen, the line's end and a letter or digit join without a space.
  The hyphen goes when the letters on both sides are lower case (``unstoppa-``/``ble`` → ``unstoppable``), unless
  the compound shows itself: either half already holds a hyphen (``peer-to-``/``peer``, ``peer-``/``to-peer``), the
  first is an address (holds a ``/``) or one of :data:`COMPOUND_PREFIXES` (``self-``/``organizing``), or the second
  is one of :data:`COMPOUND_SUFFIXES` (``user-``/``friendly``). It stays before a capital or a digit
  (``Proof-of-``/``Work``, ``2020-``/``2025``). A soft hyphen at a line end always goes. A compound that shows none
  of these signs loses its hyphen (``high-``/``load`` → ``highload``): the price of a rule without a dictionary;
- **lines of a paragraph** join with a space. A line break stays (as one newline) after a short line (under
  :data:`SHORT` of the document's full line width) unless it ends mid-sentence and the next line goes on in lower
  case; before a bullet; before and after a numbered heading (``1.2 Issues facing ...``: a number, a capital, no
  full stop at its end, shorter than :data:`HEADING` of a full line); before a numbered item after a full stop. A
  blank line stays a paragraph break.

The cleaned text of a page is what the index, answers and source cards read. :class:`CleanPage` keeps, for each of
its characters, the index in the extracted text (``original``) it comes from, so the evidence viewer, which aligns
the extracted text with pdfium's characters, still boxes exactly the characters of a cited span.
"""

from __future__ import annotations

import re
from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

#: Characters that are other characters' ligatures, and the letters they stand for.
LIGATURES = {
    "\ufb00": "ff",
    "\ufb01": "fi",
    "\ufb02": "fl",
    "\ufb03": "ffi",
    "\ufb04": "ffl",
    "\ufb05": "st",
    "\ufb06": "st",
}
#: White space of other widths: read as a plain space.
ODD_SPACES = frozenset("\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000")
#: Marks that print nothing (soft hyphen, zero-width space, word joiner, byte-order mark): left out.
INVISIBLE = frozenset("\u00ad\u200b\u2060\ufeff")
_FOLD = str.maketrans({**LIGATURES, **dict.fromkeys(ODD_SPACES, " "), **dict.fromkeys(INVISIBLE)})

_SPACES = re.compile(r"[ \t\u00a0]+")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_BLANK_LINES = re.compile(r"\n\s*\n\s*")

#: Lines at the top and at the bottom of a page where running headers, footers and page numbers are looked for.
BAND = 2
#: Pages sampled (evenly spread) to find the running lines and the line width: the viewer reads these again.
SAMPLE_PAGES = 12
#: A document of fewer pages has no running lines (one repeated line on two pages may well be text).
MIN_PAGES = 3
#: A line shorter than this share of the document's full line width may end a paragraph.
SHORT = 0.7
#: A numbered heading is shorter than this share of the full line width (a line of text that starts with a number
#: and runs on is about as long as a full line).
HEADING = 0.8
#: Which line length counts as the full width: this share of the sampled lines is no longer.
WIDTH_QUANTILE = 0.9
#: Words that keep their hyphen at a line end before a lower-case letter: the hyphen is the compound's own.
COMPOUND_PREFIXES = frozenset({"self", "non", "cross", "anti", "quasi", "pseudo", "well", "half"})
#: Words that keep the hyphen before them at a line end (``user-``/``friendly``): the second half of a compound.
COMPOUND_SUFFIXES = frozenset({"based", "friendly", "oriented", "driven", "intensive", "specific", "making", "wide"})
_HYPHENS = frozenset("-\u2010\u00ad")
_ENDS = frozenset(".?!:;")
_CLOSERS = frozenset("\"'”’)]")
_NUMBERED = re.compile(r"\d+(?:\.\d+)*[.)]?\s+[A-Z]")
_BULLET = re.compile(r"[•▪◦●‣∙·*-]\s")
_DIGITS = re.compile(r"\d+")


def fold_chars(text: str) -> str:
    """Ligatures spelt out, odd spaces made plain, invisible marks dropped (safe for any loader's text)."""
    return text.translate(_FOLD)


def tidy_text(text: str) -> str:
    """One newline convention, no control characters, tidy blank lines."""
    text = _CONTROLS.sub(" ", text.replace("\r\n", "\n").replace("\r", "\n"))
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


@dataclass(frozen=True, slots=True)
class CleanPage:
    """A page's cleaned ``text`` and, for each of its characters, the index in ``original`` (the page's text as
    extracted) it comes from: a letter its own letter, a spelt-out ligature's letters the ligature, a joining space
    or newline the line end it stands for."""

    text: str
    original: str
    origin: array[int]

    @classmethod
    def unchanged(cls, text: str) -> CleanPage:
        """A text that is its own original."""
        return cls(text, text, array("i", range(len(text))))

    def original_indices(self, start: int, end: int) -> list[int]:
        """The characters of ``original`` that ``text[start:end]`` shows, in order: those its characters come from
        and, between two of them, what the cleaning took out of a word or a line join (a line-end hyphen, the line
        break), never a dropped line."""
        start, end = max(start, 0), min(end, len(self.text))
        found: list[int] = []
        for index in range(start, end):
            at = self.origin[index]
            if found and at <= found[-1]:
                continue  # the second letter of a ligature
            if found and at > found[-1] + 1:
                gap = range(found[-1] + 1, at)
                if all(self.original[j] in _HYPHENS or self.original[j].isspace() for j in gap):
                    found.extend(gap)
            found.append(at)
        return found


@dataclass(frozen=True, slots=True)
class PdfStyle:
    """What the sampled pages of a PDF tell about all of them: its running lines and its full line width."""

    running: frozenset[str]
    width: int


def sample(count: int) -> list[int]:
    """The indexes of the pages (of ``count``) that :func:`pdf_style` reads: at most :data:`SAMPLE_PAGES`, evenly
    spread, the first and the last among them."""
    if count <= SAMPLE_PAGES:
        return list(range(count))
    step = (count - 1) / (SAMPLE_PAGES - 1)
    return sorted({round(i * step) for i in range(SAMPLE_PAGES)})


def _key(line: str) -> str:
    """A line as running lines are compared: digits as one sign, white space as one, case folded."""
    return _DIGITS.sub("#", " ".join(line.split())).casefold()


def _band(lines: list[str]) -> list[str]:
    filled = [line for line in lines if line]
    return filled[:BAND] + filled[BAND:][-BAND:]


def pdf_style(sampled: Sequence[str]) -> PdfStyle:
    """The running lines and the line width of a PDF, from the extracted texts of its :func:`sample` pages."""
    pages = [text.split("\n") for text in sampled]
    counts: Counter[str] = Counter()
    for lines in pages:
        counts.update({_key(line) for line in _band(lines)})
    running = frozenset(
        key for key, n in counts.items() if len(pages) >= MIN_PAGES and 2 * n > len(pages) and key.strip()
    )
    lengths = sorted(len(line) for lines in pages for line in lines if line and _key(line) not in running)
    width = lengths[min(int(WIDTH_QUANTILE * len(lengths)), len(lengths) - 1)] if lengths else 0
    return PdfStyle(running=running, width=width)


class _Builder:
    """The cleaned text as it is written, with the origin of each character."""

    def __init__(self) -> None:
        self.chars: list[str] = []
        self.origin: list[int] = []

    def add(self, char: str, at: int) -> None:
        if char == " " and (not self.chars or self.chars[-1] in " \n"):
            return
        self.chars.append(char)
        self.origin.append(at)

    def trim(self) -> None:
        while self.chars and self.chars[-1] in " \n":
            self.chars.pop()
            self.origin.pop()

    def line(self, text: str, at: int) -> None:
        """One extracted line (starting at index ``at``), its characters folded."""
        for offset, char in enumerate(text):
            for folded in LIGATURES.get(char, " " if char in ODD_SPACES else "" if char in INVISIBLE else char):
                self.add(folded, at + offset)
        while self.chars and self.chars[-1] == " ":
            self.chars.pop()
            self.origin.pop()


def _ends_sentence(line: str) -> bool:
    line = line.rstrip("".join(_CLOSERS))
    line = re.sub(r"\s*\[\d[\d,\s]*\]$", "", line)  # a citation marker after the full stop
    return bool(line) and line[-1] in _ENDS


def _hyphen_join(before: str, after: str) -> str | None:
    """How a line ending in a hyphen meets the next: ``""`` (the hyphen goes), ``"-"`` (it stays, no space) or None
    (not a hyphen between two parts of a word)."""
    if len(before) < 2 or before[-1] not in _HYPHENS or not after or not before[-2].isalnum() or not after[0].isalnum():
        return None
    if before[-1] == "\u00ad":
        return ""
    if not (before[-2].islower() and after[0].islower()):
        return "-"
    word, rest = before[:-1].rsplit(" ", 1)[-1], after.split(" ", 1)[0]
    if "-" in word or "-" in rest or "/" in word or word.casefold() in COMPOUND_PREFIXES:
        return "-"  # a compound (peer-to-/peer, peer-/to-peer), an address, a prefix that keeps its hyphen
    if rest.rstrip(".,;:?!)]\"'’”").casefold() in COMPOUND_SUFFIXES:
        return "-"
    return ""


def _heading(line: str, width: int) -> bool:
    """A numbered heading (``1.2 Issues facing ...``): a number, a capital, no full stop or comma at its end, shorter
    than a full line."""
    return bool(_NUMBERED.match(line)) and not _ends_sentence(line) and line[-1] != "," and len(line) < HEADING * width


def _breaks(before: str, after: str, width: int) -> bool:
    """Whether a line break between two lines of a page stays (else they join with a space)."""
    if _BULLET.match(after) or (_heading(before, width) and not after[0].islower()):
        return True
    if _NUMBERED.match(after) and (_ends_sentence(before) or _heading(after, width)):
        return True  # a numbered item or heading
    if len(before) >= SHORT * width:
        return False
    return _ends_sentence(before) or not after[0].islower()


def clean_pdf_page(original: str, style: PdfStyle) -> CleanPage:
    """The cleaned text of a page whose extracted (and tidied) text is ``original``."""
    lines: list[tuple[int, str]] = []
    at = 0
    for line in original.split("\n"):
        lines.append((at, line))
        at += len(line) + 1
    filled = [i for i, (_, line) in enumerate(lines) if line]
    edges = set(filled[:BAND] + filled[BAND:][-BAND:])
    out = _Builder()
    previous: str | None = None
    kept = -1
    newlines: list[int] = []  # the line ends since the last line kept (a blank line: two)
    for i, (start, line) in enumerate(lines):
        if previous is not None and start > 0:
            newlines.append(start - 1)
        if not line or (i in edges and _key(line) in style.running):
            continue
        if previous is not None:
            blank = any(not lines[j][1] for j in range(kept + 1, i))
            join = None if blank else _hyphen_join(previous, line)
            if join == "":
                if out.chars and out.chars[-1] in _HYPHENS:
                    out.chars.pop()
                    out.origin.pop()
            elif join is None and blank:
                out.add("\n", newlines[0])
                out.add("\n", newlines[-1])
            elif join is None:
                out.add("\n" if _breaks(previous, line, style.width) else " ", newlines[0])
        out.line(line, start)
        previous, kept, newlines = line, i, []
    out.trim()
    return CleanPage("".join(out.chars), original, array("i", out.origin))


def clean_pdf_pages(originals: Sequence[str]) -> list[CleanPage]:
    """Every page of a PDF cleaned, from their extracted (and tidied) texts."""
    style = pdf_style([originals[i] for i in sample(len(originals))])
    return [clean_pdf_page(text, style) for text in originals]
