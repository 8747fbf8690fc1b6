"""Clean text from every loader (index/text_clean.py): PDF line-end hyphens and line breaks joined, running headers,
footers and page numbers dropped, ligatures and odd spaces folded, with the map from the cleaned PDF text back to
the text as extracted kept exact; and, over a whole white-paper-like PDF (bench/pdfs.py ``harbour_paper_pdf``), no
chunk, answer or source card holding a hyphen-broken word, a line break inside a sentence or a running line.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from answer_fixtures import bot_with, build_retriever, clean_settings
from conftest import HASHING_COVERAGE
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.pdfs import HYPHENATED, HYPHENATED_LINES, PAPER_HEADER, harbour_paper_pdf, text_pdf
from bot.view.render import Turn, sources_html
from index.embeddings import Embedder
from index.loaders import TEXT_VERSION, load_file, normalise_text
from index.text_clean import CleanPage, PdfStyle, clean_pdf_page, clean_pdf_pages, fold_chars, tidy_text

#: A style for one page alone: no running lines, lines of 60 characters are full.
PLAIN = PdfStyle(running=frozenset(), width=60)
FULL = "a line of text that runs the whole width of the column here and"  # 63 characters: a full line


def clean(*lines: str) -> str:
    return clean_pdf_page("\n".join(lines), PLAIN).text


@pytest.mark.parametrize(
    ("lines", "joined"),
    [
        (("the contract is unstoppa-", "ble today"), "the contract is unstoppable today"),
        (("a peer-to-", "peer network"), "a peer-to-peer network"),  # the word is already a compound
        (("a peer-", "to-peer network"), "a peer-to-peer network"),
        (("its self-", "organizing nodes"), "its self-organizing nodes"),  # a prefix that keeps its hyphen
        (("a user-", "friendly page"), "a user-friendly page"),  # a second half that keeps it
        (("the Proof-of-", "Work rule"), "the Proof-of-Work rule"),  # a capital after it: the hyphen stays
        (("in 2020-", "2025 only"), "in 2020-2025 only"),
        (("see https://example.org/en-", "us/page"), "see https://example.org/en-us/page"),
        (("unstoppa\u00ad", "ble"), "unstoppable"),  # a soft hyphen always goes
        (("Bitcoin -", "and more"), "Bitcoin - and more"),  # a dash between words is no hyphenation
    ],
)
def test_a_hyphen_at_a_line_end_joins_the_word(lines: tuple[str, str], joined: str) -> None:
    assert clean(*lines) == joined


def test_lines_of_a_paragraph_join_and_breaks_stay_where_a_paragraph_or_heading_ends() -> None:
    assert clean(FULL, "goes on here.") == f"{FULL} goes on here."
    assert clean("A short line ends.", "Another starts.") == "A short line ends.\nAnother starts."
    assert clean("a short line goes", "on in lower case") == "a short line goes on in lower case"
    assert (
        clean("1.2 Issues facing adoption", "This paper will not") == "1.2 Issues facing adoption\nThis paper will not"
    )
    assert clean(FULL, "2 Measurements", "The gauge reads.") == f"{FULL}\n2 Measurements\nThe gauge reads."
    assert clean("The list:", "• one item", "• another item") == "The list:\n• one item\n• another item"
    assert clean("One paragraph.", "", "Another.") == "One paragraph.\n\nAnother."


def test_running_headers_footers_and_page_numbers_are_dropped() -> None:
    words = ["tugs", "cranes", "pilots", "ferries", "buoys"]
    pages = [
        f"Harbour Review 2024\n{n}\nThe {w} come first.\nThe {w} go last.\nPage {n} of 5" for n, w in enumerate(words)
    ]
    pages[0] = "A title page with no header\nIt has text.\nPage 1 of 5"
    cleaned = [p.text for p in clean_pdf_pages(pages)]
    assert cleaned[0] == "A title page with no header It has text."  # lines of one length: one paragraph
    assert cleaned[3] == "The ferries come first. The ferries go last."
    # a line repeated on under half the pages, or in a document of two pages, is text
    two = [p.text for p in clean_pdf_pages(["Harbour Review\nText one.", "Harbour Review\nText two."])]
    assert two == ["Harbour Review Text one.", "Harbour Review Text two."]
    few = ["Note\nOne.", "Note\nTwo.", "Other\nThree.", "Else\nFour.", "Again\nFive."]
    assert next(p.text for p in clean_pdf_pages(few)) == "Note\nOne."


def test_ligatures_odd_spaces_and_invisible_marks_are_folded_in_every_loader(tmp_path: Path) -> None:
    odd = "The \ufb01sh and the \ufb02ag\u00a0cost\u2009\u20ac\u202f5; un\u00adstop\u200bpable\ufeff."
    assert fold_chars(odd) == "The fish and the flag cost \u20ac 5; unstoppable."
    assert normalise_text(odd) == "The fish and the flag cost \u20ac 5; unstoppable."
    (tmp_path / "note.txt").write_text(odd, encoding="utf-8")
    (tmp_path / "page.html").write_text("<p>The o&#xFB03;ce is e&shy;mpty&nbsp;now.</p>", encoding="utf-8")
    assert load_file(tmp_path / "note.txt", "note.txt", max_bytes=1 << 20).documents[0].text == fold_chars(odd)
    assert load_file(tmp_path / "page.html", "page.html", max_bytes=1 << 20).documents[0].text == (
        "The office is empty now."
    )
    assert clean("the \ufb01sh\u2009and the o\ufb03ce") == "the fish and the office"


WORDS = st.sampled_from(["the", "unstoppa", "ble", "\ufb01sh", "o\ufb03ce", "Port", "peer-to", "2020", "x", "end."])
SEPARATORS = st.sampled_from([" ", "\u2009", "\n", "-\n", "\u00ad\n", "\n\n", " \u00a0"])


def _fold(text: str) -> str:
    return " ".join(fold_chars(text).split())


@settings(max_examples=80, deadline=None)
@given(words=st.lists(WORDS, min_size=1, max_size=30), seps=st.lists(SEPARATORS, min_size=30, max_size=30))
def test_the_offset_map_leads_every_cleaned_span_back_to_its_original_characters(
    words: list[str], seps: list[str]
) -> None:
    """For every span of the cleaned text whose ends do not cut a ligature, the original characters it maps back
    to, folded, read as the span does (white space aside); the map never goes backwards."""
    original = tidy_text("".join(w + s for w, s in zip(words, seps, strict=False)))  # as the PDF loader has it
    page = clean_pdf_page(original, PdfStyle(running=frozenset(), width=20))
    origin = list(page.origin)
    assert len(origin) == len(page.text) and origin == sorted(origin)
    cuts = [i for i in range(len(page.text) + 1) if i in (0, len(page.text)) or origin[i - 1] != origin[i]]
    for start in cuts:
        for end in cuts:
            if end <= start:
                continue
            indices = list(dict.fromkeys(origin[start:end]))
            assert _fold("".join(original[j] for j in indices)) == _fold(page.text[start:end])
            shown = page.original_indices(start, end)
            assert set(indices) <= set(shown) and shown == sorted(shown)
            assert all(original[j] in "-\u00ad" or original[j].isspace() for j in set(shown) - set(indices))


def test_a_word_joined_over_a_line_end_maps_back_to_both_halves_and_its_hyphen() -> None:
    page = clean_pdf_page("\n".join(HYPHENATED_LINES), PLAIN)
    assert page.text == HYPHENATED
    start = page.text.index("unstoppable")
    shown = page.original_indices(start, start + len("unstoppable"))
    assert "".join(page.original[j] for j in shown) == "unstoppa-\nble"
    assert CleanPage.unchanged("abc").original_indices(0, 3) == [0, 1, 2]


def test_a_pdf_of_short_lines_keeps_its_sentences_apart(tmp_path: Path) -> None:
    lines = ["A line that runs on over the full width of the page and", "ends here.", "Then a new one starts."]
    pdf = text_pdf(tmp_path / "notes.pdf", [lines])
    (document,) = load_file(pdf, "notes.pdf", max_bytes=1 << 20).documents
    assert document.text == f"{lines[0]} ends here.\nThen a new one starts."


GAUGE_QUESTION = "Which recorder logs the water level every six minutes at the pier head?"
#: A word cut at a line end and left so: a lower-case letter, a hyphen, a space or line break, a lower-case letter.
BROKEN_WORD = re.compile(r"[a-z]-\s+[a-z]|unstoppa\b|\bble\b")
#: A line break inside a sentence: one not after a full stop, colon or heading and before a lower-case letter.
BROKEN_LINE = re.compile(r"[a-z,]\n[a-z]")


def assert_clean(text: str, where: str) -> None:
    assert not BROKEN_WORD.search(text), (where, BROKEN_WORD.search(text), text)
    assert not BROKEN_LINE.search(text), (where, text)
    assert "Page " not in text and PAPER_HEADER not in text and "Annual Report" not in text, (where, text)


def test_no_chunk_answer_or_source_card_of_a_white_paper_holds_a_broken_word_or_line(
    tmp_path: Path, hashing_embedder: Embedder
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    harbour_paper_pdf(docs / "harbour-review.pdf")
    retriever = build_retriever(clean_settings(tmp_path / "data", **HASHING_COVERAGE), hashing_embedder, docs)
    stored = list(retriever.store.iter_all(with_text=True))
    assert {meta["page"] for _, _, meta in stored} == {1, 2, 3, 4}
    assert {meta["text_version"] for _, _, meta in stored} == {TEXT_VERSION}
    for chunk_id, text, _ in stored:
        assert text is not None
        assert_clean(text, chunk_id)
    assert any(HYPHENATED in text for _, text, _ in stored if text)
    assert any("peer-to-peer network" in text for _, text, _ in stored if text)
    bot = bot_with(retriever)
    questions = [GAUGE_QUESTION, "What network do the pilots and tugs use for radio traffic?"]
    for question in questions:
        answer = bot.ask(question)
        assert answer.citations and not answer.refused, question
        assert_clean(answer.text, question)
        for citation in answer.citations:
            assert_clean(citation.quote, question)
            assert_clean(citation.passage, question)
        cards = re.sub(r"<[^>]+>", "", sources_html([Turn(answer)]))
        assert_clean(cards, question)
    gauge = bot.ask(questions[0])
    assert any("unstoppable recorder" in c.quote for c in gauge.citations)


def test_an_index_read_by_older_loaders_reads_its_files_again(tmp_path: Path, hashing_embedder: Embedder) -> None:
    """Chunks stored with another TEXT_VERSION (or none: an index made before the cleaning): the next run reads those
    files again, as if they had changed, and leaves no chunk of the old reading behind."""
    from helpers import indexed

    from app import build

    docs = tmp_path / "docs"
    docs.mkdir()
    harbour_paper_pdf(docs / "harbour-review.pdf")
    (docs / "notes.txt").write_text("Tugboats rest on Sundays.", encoding="utf-8")
    services = indexed(build(clean_settings(tmp_path / "data"), embedder=hashing_embedder), docs)
    first = {chunk_id for chunk_id, _, _ in services.store.iter_all(with_text=False)}
    services.store.set_metadata({i: {**meta, "text_version": 1} for i, _, meta in services.store.iter_all(False)})
    report = services.indexer.run([docs])
    assert sorted(report.updated) == ["harbour-review.pdf", "notes.txt"] and not report.unchanged
    stored = list(services.store.iter_all(with_text=False))
    assert {meta["text_version"] for _, _, meta in stored} == {TEXT_VERSION}
    assert {chunk_id for chunk_id, _, _ in stored} == first  # the same text read again: the same chunks, no others
    assert services.indexer.run([docs]).unchanged == ["harbour-review.pdf", "notes.txt"]
