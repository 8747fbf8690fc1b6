"""Chunking: exact offsets, overlap, paragraph and sentence boundaries, stable ids."""

from __future__ import annotations

import itertools
import random
import re
import subprocess
import sys

import pytest
from conftest import ROOT, SEED_DOC
from hypothesis import given, settings
from hypothesis import strategies as st

from index.chunking import Chunker, chunk_id
from index.loaders import load_file
from index.types import Chunk, Document

WORDS = "river stone lamp archive ledger harbour signal copper meadow lantern orchard quarry".split()


def prose(seed: int, paragraphs: int, sentences: tuple[int, int] = (3, 9)) -> str:
    """Paragraphs of sentences (each well under 200 characters) ending in . ? or !"""
    rng = random.Random(seed)
    out = []
    for _ in range(paragraphs):
        sentences_here = []
        for _ in range(rng.randint(*sentences)):
            words = [rng.choice(WORDS) for _ in range(rng.randint(4, 14))]
            sentences_here.append(" ".join(words).capitalize() + rng.choice(".?!"))
        out.append(" ".join(sentences_here))
    return "\n\n".join(out)


def split(text: str, size: int = 300, overlap: int = 60, source: str = "doc.txt") -> list[Chunk]:
    return Chunker(size, overlap).split(Document(text=text, source=source, title="Doc"), "hash")


def assert_well_formed(text: str, chunks: list[Chunk], size: int) -> None:
    for chunk in chunks:
        assert text[chunk.start : chunk.end] == chunk.text
        assert 0 < len(chunk.text) <= size
        assert chunk.text == chunk.text.strip()
    assert [c.start for c in chunks] == sorted(c.start for c in chunks)
    ends = [c.end for c in chunks]
    assert ends == sorted(set(ends)), "a chunk repeats or lies inside the one before"
    assert len({c.id for c in chunks}) == len(chunks)
    covered = bytearray(len(text))
    for chunk in chunks:
        covered[chunk.start : chunk.end] = b"\x01" * (chunk.end - chunk.start)
    lost = [i for i, ch in enumerate(text) if not covered[i] and not ch.isspace()]
    assert not lost, f"text not in any chunk at {lost[:5]}"


def test_offsets_exact_on_the_seed_document() -> None:
    loaded = load_file(SEED_DOC, SEED_DOC.name, max_bytes=10**7)
    document = loaded.documents[0]
    chunks = Chunker(800, 150).split(document, loaded.content_hash)
    assert len(chunks) > 5
    assert_well_formed(document.text, chunks, 800)
    assert {(c.source, c.title, c.content_hash) for c in chunks} == {
        (document.source, document.title, loaded.content_hash)
    }


def test_offsets_exact_when_the_text_repeats_itself() -> None:
    # Searching for each chunk's text finds the wrong copy (or none) in repetitive text; spans do not.
    text = ("Same line again. " * 40 + "\n\n") * 6 + "Same line again."
    chunks = split(text, size=120, overlap=50)
    assert_well_formed(text, chunks, 120)
    assert len({c.start for c in chunks}) == len(chunks)


@settings(max_examples=300, deadline=None)
@given(
    pieces=st.lists(
        st.sampled_from(["alpha", "beta.", "gamma?", "delta,", "eps;", "\n", "\n\n", " ", "x" * 130, "Ünïcode!"]),
        max_size=300,
    ),
    size=st.sampled_from([100, 150, 400]),
    overlap=st.sampled_from([0, 20, 99]),
)
def test_offsets_exact_for_any_text(pieces: list[str], size: int, overlap: int) -> None:
    text = " ".join(pieces)
    assert_well_formed(text, split(text, size=size, overlap=overlap), size)


def test_neighbouring_chunks_overlap_by_whole_sentences() -> None:
    text = prose(1, 1, sentences=(40, 40))  # one long paragraph
    chunks = split(text, size=400, overlap=120)
    assert len(chunks) >= 4
    for before, after in itertools.pairwise(chunks):
        shared = text[after.start : before.end]
        assert after.start < before.end, "no overlap"
        assert len(shared) <= 120
        assert before.text.endswith(shared) and after.text.startswith(shared)
        assert re.search(r"[.?!]$", shared), "the overlap is not whole sentences"


def test_no_overlap_when_none_is_asked() -> None:
    text = prose(2, 1, sentences=(30, 30))
    chunks = split(text, size=300, overlap=0)
    assert all(b.end <= a.start for b, a in itertools.pairwise(chunks))


def test_chunks_end_at_sentence_or_paragraph_boundaries() -> None:
    text = prose(3, 12)
    chunks = split(text, size=500, overlap=100)
    assert len(chunks) > 10
    paragraph_ends = {m.start() for m in re.finditer(r"\n\n", text)} | {len(text)}
    for chunk in chunks:
        assert chunk.text[-1] in ".?!", f"chunk ends mid-sentence: ...{chunk.text[-30:]!r}"
        assert chunk.text[0].isupper(), f"chunk starts mid-sentence: {chunk.text[:30]!r}..."
    # Where a paragraph fits, it is not cut: every paragraph end that falls inside a chunk is a whole one.
    assert any(c.end in paragraph_ends for c in chunks)


def test_paragraphs_that_fit_stay_whole() -> None:
    paragraphs = [prose(10 + i, 1, sentences=(2, 3)) for i in range(8)]
    assert all(len(p) < 250 for p in paragraphs)
    text = "\n\n".join(paragraphs)
    chunks = split(text, size=600, overlap=0)
    for paragraph in paragraphs:
        assert any(paragraph in c.text for c in chunks), "a paragraph that fits a chunk was split"


def test_a_sentence_longer_than_a_chunk_is_cut_at_words() -> None:
    text = " ".join(["lantern"] * 200) + "."
    chunks = split(text, size=150, overlap=30)
    assert_well_formed(text, chunks, 150)
    assert all(c.text.startswith("lantern") for c in chunks)


def test_a_run_without_spaces_is_cut_into_overlapping_windows() -> None:
    text = "0123456789" * 100
    chunks = split(text, size=300, overlap=50)
    assert [(c.start, c.end) for c in chunks] == [(0, 300), (250, 550), (500, 800), (750, 1000)]


def test_empty_and_blank_documents_have_no_chunks() -> None:
    assert split("") == []
    assert split(" \n\n \n") == []


def test_overlap_must_be_smaller_than_size() -> None:
    with pytest.raises(ValueError):
        Chunker(200, 200)


def test_ids_are_stable_across_processes() -> None:
    text = prose(4, 6)
    here = [c.id for c in split(text)]
    code = (
        "import sys; from index.chunking import Chunker; from index.types import Document; "
        "doc = Document(text=sys.stdin.read(), source='doc.txt', title='Doc'); "
        "print(' '.join(c.id for c in Chunker(300, 60).split(doc, 'hash')))"
    )
    other = subprocess.run(
        [sys.executable, "-c", code], input=text, cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert here == other
    assert len(here) > 3


def test_ids_change_with_content_and_place_only() -> None:
    text = prose(5, 6)
    base = split(text)
    # Change one word in the last paragraph: chunks before it keep their ids, the changed one does not.
    last = text.rindex("\n\n")
    edited = text[:last] + text[last:].replace(" ", " zebra ", 1)
    changed = split(edited)
    before = [c for c in base if c.end <= last]
    assert before and [c.id for c in changed[: len(before)]] == [c.id for c in before]
    assert {c.id for c in changed} != {c.id for c in base}
    # The same text at another offset is another passage.
    shifted = split("Preface sentence here.\n\n" + text)
    assert {c.text for c in shifted} >= {c.text for c in base[1:]}
    assert not {c.id for c in shifted} & {c.id for c in base}
    # Same passage, other file, page or indexed folder: other ids.
    ids = {
        chunk_id("a.txt", None, 0, "text"),
        chunk_id("b.txt", None, 0, "text"),
        chunk_id("a.txt", 2, 0, "text"),
        chunk_id("a.txt", None, 1, "text"),
        chunk_id("a.txt", None, 0, "text!"),
        chunk_id("a.txt", None, 0, "text", root="/docs"),
    }
    assert len(ids) == 6
    assert chunk_id("a.txt", None, 0, "text") == chunk_id("a.txt", 0, 0, "text")
