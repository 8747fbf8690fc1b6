"""The PDF evidence view (bot/view/pdf.py): a span of docbot's page text → boxes on the page → the page drawn.

The boxes are checked against pdfium's own character boxes of the known sentence, found here independently of
the viewer's alignment (pdfium's characters searched directly, boxes turned into page fractions by hand), on a
two-column PDF whose known sentences wrap across lines and across the column break.
"""

from __future__ import annotations

import io
import math
import os
import subprocess
import sys
import threading
import time
import unicodedata
import zlib
from collections.abc import Callable
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from answer_fixtures import bot_with, build_retriever, clean_settings
from conftest import HASHING_COVERAGE
from helpers import pdfium_boxes, pools
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from test_loaders import BAD_FILES

from bench.pdfs import ACROSS, WRAPPED, column_lines, drawn_pdf, filler, harbour_report_pdf, raw_pdf, two_column_pdf
from bot.view import pdf as view_pdf
from bot.view.layout import Box, PageChars, align
from bot.view.pdf import PageRenderer, ViewerPool, ViewError, page_count, page_layout, sentence_boxes
from index.embeddings import Embedder
from index.loaders import load_file
from index.parse_pool import ParseBudget

BUDGET = ParseBudget(timeout_s=20, memory_mb=1024)


@pytest.fixture(scope="module")
def report_pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return harbour_report_pdf(tmp_path_factory.mktemp("pdf") / "harbour-report.pdf")


def truth(path: Path, page: int, sentence: str) -> tuple[list[Box], list[Box]]:
    mine, others = pdfium_boxes(path, page, sentence)
    return [Box(*r) for r in mine], [Box(*r) for r in others]


def span(path: Path, page: int, sentence: str) -> tuple[int, int]:
    """The sentence's span in docbot's own text of the page (the loader's Document)."""
    (document,) = [d for d in load_file(path, path.name, max_bytes=1 << 24).documents if d.page == page]
    start = document.text.replace("\n", " ").index(sentence)
    return start, start + len(sentence)


def assert_covers_exactly(boxes: list[Box], sentence_chars: list[Box], others: list[Box]) -> None:
    """Every character of the sentence is inside a box; no other character's centre is in any box."""
    for char in sentence_chars:
        assert any(b.contains(char) for b in boxes), (char, boxes)
    for char in others:
        centre = Box(*(2 * [(char.left + char.right) / 2, (char.top + char.bottom) / 2]))
        assert not any(b.contains(centre, slack=0) for b in boxes), (char, boxes)


def test_a_sentence_wrapped_over_lines_gets_one_box_per_line(report_pdf: Path) -> None:
    start, end = span(report_pdf, 2, WRAPPED)
    boxes = sentence_boxes(report_pdf, 2, start, end, viewer=pools().view, budget=BUDGET)
    mine, others = truth(report_pdf, 2, WRAPPED)
    assert len(boxes) == len(column_lines([WRAPPED])) - 1 >= 3
    assert_covers_exactly(boxes, mine, others)
    assert all(b.right < 0.5 for b in boxes)  # the left column only
    assert [b.top for b in boxes] == sorted(b.top for b in boxes)


def test_a_sentence_across_the_column_break_is_boxed_in_both_columns(report_pdf: Path) -> None:
    start, end = span(report_pdf, 2, ACROSS)
    boxes = sentence_boxes(report_pdf, 2, start, end, viewer=pools().view, budget=BUDGET)
    mine, others = truth(report_pdf, 2, ACROSS)
    assert_covers_exactly(boxes, mine, others)
    left, right = [b for b in boxes if b.right < 0.5], [b for b in boxes if b.left > 0.5]
    assert len(left) == 2 and right and len(left) + len(right) == len(boxes)
    assert min(b.top for b in right) < 0.2 < 0.8 < max(b.bottom for b in left)  # bottom left, then top right


def test_boxes_are_fractions_of_the_drawn_page(report_pdf: Path, tmp_path: Path) -> None:
    """Laid over the PNG, the highlight boxes fall on ink: the picture and the boxes agree on where things are."""
    renderer = PageRenderer(tmp_path / "views", 50_000_000, BUDGET, pools().view)
    picture = Image.open(io.BytesIO(renderer.png(report_pdf, 2, 100))).convert("L")
    assert picture.size == (math.ceil(595.2756 * 100 / 72), math.ceil(841.8898 * 100 / 72))
    start, end = span(report_pdf, 2, WRAPPED)
    for box in sentence_boxes(report_pdf, 2, start, end, viewer=pools().view, budget=BUDGET):
        w, h = picture.size
        crop = picture.crop((int(box.left * w), int(box.top * h), int(box.right * w) + 1, int(box.bottom * h) + 1))
        assert crop.getextrema()[0] < 100  # dark pixels (text) inside
    blank = picture.crop((0, 0, picture.size[0], int(0.05 * picture.size[1])))  # the top margin
    assert blank.getextrema() == (255, 255)


def test_a_cited_sentence_lands_on_its_page_and_box(tmp_path: Path, hashing_embedder: Embedder) -> None:
    """Loader → chunker → index → answer → citation span → boxes: the same span model end to end."""
    docs = tmp_path / "docs"
    docs.mkdir()
    pdf = two_column_pdf(
        docs / "port-notes.pdf",
        [[filler(40), "Tugboats rest on Sundays."], [filler(12), WRAPPED, filler(30)], [filler(20)]],
    )
    settings = clean_settings(tmp_path / "data", **HASHING_COVERAGE)
    bot = bot_with(build_retriever(settings, hashing_embedder, docs))
    answer = bot.ask("How often does the harbour master ring the fog bell?")
    (citation,) = [c for c in answer.citations if "fog bell" in c.quote]
    assert (citation.source, citation.page) == ("port-notes.pdf", 2)
    assert " ".join(citation.quote.split()) == WRAPPED
    where = (docs / citation.source, citation.page, citation.quote_start, citation.quote_end)
    boxes = sentence_boxes(*where, viewer=pools().view, budget=BUDGET, expected=citation.quote)
    mine, others = truth(pdf, 2, WRAPPED)
    assert_covers_exactly(boxes, mine, others)
    passage = sentence_boxes(
        docs / citation.source,
        citation.page,
        citation.passage_start,
        citation.passage_end,
        viewer=pools().view,
        budget=BUDGET,
    )
    assert all(any(p.contains(b) for p in passage) for b in boxes)  # the passage, marked lightly, holds the quote

    two_column_pdf(pdf, [[filler(40)], [filler(3), WRAPPED, filler(30)], [filler(20)]])  # edited since the answer
    with pytest.raises(ViewError, match="the document changed since this answer: page 2 no longer holds the cited"):
        sentence_boxes(*where, viewer=pools().view, budget=BUDGET, expected=citation.quote)


def test_page_count_and_pages_out_of_range(report_pdf: Path, tmp_path: Path) -> None:
    assert page_count(report_pdf, viewer=pools().view, budget=BUDGET) == 3
    with pytest.raises(ViewError, match=r"page 4 is not in this PDF \(it has 3\)"):
        sentence_boxes(report_pdf, 4, 0, 5, viewer=pools().view, budget=BUDGET)
    with pytest.raises(ViewError, match="characters 0-99999 are not on page 2"):
        sentence_boxes(report_pdf, 2, 0, 99_999, viewer=pools().view, budget=BUDGET)
    with pytest.raises(ViewError, match="no longer there"):
        page_count(tmp_path / "removed.pdf", viewer=pools().view, budget=BUDGET)


def test_pictures_are_cached_on_disk_under_a_size_cap(report_pdf: Path, tmp_path: Path) -> None:
    folder = tmp_path / "views"
    one = PageRenderer(folder, 10**9, BUDGET, pools().view).png(report_pdf, 1, 72)
    assert one.startswith(b"\x89PNG") and len(list(folder.glob("*.png"))) == 1
    cap = int(2.5 * len(one))
    renderer = PageRenderer(folder, cap, BUDGET, pools().view)
    assert renderer.png(report_pdf, 1, 72) == one  # from the cache
    for page in (2, 3, 1):
        renderer.png(report_pdf, page, 72)
        time.sleep(0.01)  # distinct use times
    kept = list(folder.glob("*.png"))
    assert sum(p.stat().st_size for p in kept) <= cap and len(kept) == 2
    with pytest.raises(ViewError, match="36 to 600 dpi"):
        renderer.png(report_pdf, 1, 5000)


def test_a_changed_file_is_drawn_and_measured_anew(tmp_path: Path) -> None:
    path = two_column_pdf(tmp_path / "a.pdf", [["First version of the notes."]])
    assert page_count(path, viewer=pools().view, budget=BUDGET) == 1
    two_column_pdf(path, [["Second version."], ["It has two pages now."]])
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert page_count(path, viewer=pools().view, budget=BUDGET) == 2


def inflating_pdf(tmp_path: Path) -> bytes:
    """A one-page PDF whose 1 MB content stream inflates to 1 GB (of spaces: one block compressed once, repeated)."""
    chunk = b" " * (1 << 20)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = deflate.compress(chunk) + deflate.flush(zlib.Z_FULL_FLUSH)
    again = deflate.compress(chunk) + deflate.flush(zlib.Z_FULL_FLUSH)  # the same bytes for every later block
    check = 1
    for _ in range(1024):
        check = zlib.adler32(chunk, check)
    stream = b"\x78\xda" + first + again * 1023 + deflate.flush() + check.to_bytes(4, "big")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    return raw_pdf(objects, "1.7")


#: The loader tests' bad PDFs (pdfium may repair some: those must then work) and the deflate bomb, which must fail.
HOSTILE = [
    *(pytest.param(make, False, id=case) for case, (name, make, _) in BAD_FILES.items() if name.endswith(".pdf")),
    pytest.param(inflating_pdf, True, id="inflates to 1 GB", marks=pytest.mark.slow),
]


@pytest.mark.parametrize(("make", "must_fail"), HOSTILE)
def test_a_hostile_pdf_fails_in_one_line_within_the_budget(
    make: Callable[[Path], bytes], must_fail: bool, tmp_path: Path
) -> None:
    path = tmp_path / "hostile.pdf"
    path.write_bytes(make(tmp_path))
    budget = ParseBudget(timeout_s=5, memory_mb=512)
    renderer = PageRenderer(tmp_path / "views", 10**8, budget, pools().view)
    started = time.monotonic()
    for call in (
        lambda: renderer.png(path, 1),
        lambda: sentence_boxes(path, 1, 0, 1, viewer=pools().view, budget=budget),
    ):
        try:
            call()
        except ViewError as exc:
            reason = str(exc)
            assert reason and "\n" not in reason and len(reason) < 400, reason
        else:
            assert not must_fail
    assert time.monotonic() - started < 2 * (budget.timeout_s + 5)  # two views, each within its budget


def test_alignment_survives_ligatures_hyphens_and_spacing() -> None:
    """docbot's text and pdfium's differ: a ligature, a hyphen at a line end, spaces; offsets still find boxes."""
    theirs = "The ﬁsh of\r\nthe off-\r\nice"
    boxes = [None if c.isspace() else Box(i / 40, 0.1, (i + 1) / 40, 0.2) for i, c in enumerate(theirs)]
    lines = [0 if i < 10 else 1 if i < 17 else 2 for i in range(len(theirs))]
    layout = align("The fish of the office", PageChars.of(theirs, boxes, lines))
    start = layout.text.index("fish")
    assert layout.to_char[start] == theirs.index("ﬁ") == layout.to_char[start + 1]
    office = layout.text.index("office")
    assert len(layout.boxes(office, office + len("office"))) == 2  # "off-" and "ice" on two lines
    assert layout.to_char[layout.text.index("of ")] == theirs.index("of")


def test_the_viewer_worker_is_killed_when_over_time(
    report_pdf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page that takes longer than view_timeout_s: the view says so in one line, the failure is remembered for a
    while (not retried at every view), and once forgotten the page is drawn."""
    hurried = PageRenderer(tmp_path / "views", 10**9, ParseBudget(timeout_s=0.001, memory_mb=1024), pools().view)
    with pytest.raises(ViewError, match=r"took longer than 0.001 s to show \(raise view_timeout_s\)"):
        hurried.png(report_pdf, 3, 600)
    asked: list[object] = []
    call = view_pdf._call
    monkeypatch.setattr(view_pdf, "_call", lambda *args: asked.append(args) or call(*args))
    with pytest.raises(ViewError, match="took longer"):
        hurried.png(report_pdf, 3, 600)
    assert asked == []  # remembered: no worker asked
    monkeypatch.setattr(view_pdf, "FAILURE_KEPT_S", 0.0)
    hurried.budget = BUDGET
    assert hurried.png(report_pdf, 3, 600).startswith(b"\x89PNG")
    assert page_layout(report_pdf, 3, viewer=pools().view, budget=BUDGET).text.endswith("Page three is short.")


def test_views_beyond_the_concurrent_ones_wait_a_bounded_time(
    report_pdf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    viewer = ViewerPool()
    viewer.turns = threading.BoundedSemaphore(1)
    viewer.turns.acquire()  # another view holds the only turn
    renderer = PageRenderer(tmp_path / "views", 10**9, ParseBudget(timeout_s=0.2, memory_mb=1024), viewer)
    with pytest.raises(ViewError, match=r"the viewer is busy with other pages for over 0.2 s; try again shortly"):
        renderer.png(report_pdf, 1, 40)


def test_boxes_on_a_rotated_page_fall_on_its_ink(tmp_path: Path) -> None:
    """A page with /Rotate 90 is drawn turned; the boxes are fractions of the drawn (turned) page."""
    import pypdf

    upright = harbour_report_pdf(tmp_path / "upright.pdf")
    writer = pypdf.PdfWriter(clone_from=upright)
    writer.pages[1].rotate(90)
    turned = tmp_path / "turned.pdf"
    writer.write(turned)
    picture = Image.open(
        io.BytesIO(PageRenderer(tmp_path / "v", 10**9, BUDGET, pools().view).png(turned, 2, 72))
    ).convert("L")
    assert picture.width > picture.height  # landscape now
    start, end = span(turned, 2, WRAPPED)
    boxes = sentence_boxes(turned, 2, start, end, viewer=pools().view, budget=BUDGET)
    assert boxes and all(b.bottom - b.top > b.right - b.left for b in boxes)  # lines run top to bottom
    for box in boxes:
        w, h = picture.size
        crop = picture.crop((int(box.left * w), int(box.top * h), int(box.right * w) + 1, int(box.bottom * h) + 1))
        assert crop.getextrema()[0] < 100


def test_columns_read_in_another_order_are_still_found(report_pdf: Path) -> None:
    """pypdf and pdfium may take a page's blocks in different orders: docbot's text with its second half moved to
    the front still puts each sentence on the same characters."""
    from bot.view.pdfium_pages import page_chars

    text = page_layout(report_pdf, 2, viewer=pools().view, budget=BUDGET).text
    document = pdfium.PdfDocument(report_pdf)
    chars = page_chars(document[1])
    cut = text.replace("\n", " ").index(ACROSS)
    moved = text[cut:] + "\n" + text[:cut].rstrip()
    swapped, plain = align(moved, chars), align(text, chars)
    document.close()
    for sentence in (WRAPPED, ACROSS):
        here, there = moved.replace("\n", " ").index(sentence), text.replace("\n", " ").index(sentence)
        assert swapped.boxes(here, here + len(sentence)) == plain.boxes(there, there + len(sentence))
        assert plain.boxes(there, there + len(sentence))


def test_the_viewer_worker_imports_no_torch_and_nothing_of_the_server() -> None:
    code = (
        "import sys, bot.view.pdf_worker as w; w._preload(); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'sentence_transformers', 'chromadb', "
        "'gradio', 'transformers', 'fastapi', 'langchain_core'} | {m for m in sys.modules if m.startswith("
        "('bot.web', 'bot.answer', 'bot.config', 'index.store')) }))"
    )
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "[]"


def test_a_page_in_colour_is_drawn_in_colour_and_a_grey_one_in_grey(report_pdf: Path, tmp_path: Path) -> None:
    coloured = tmp_path / "chart.pdf"
    with drawn_pdf(coloured) as pdf:
        pdf.setFillColorRGB(0.8, 0.1, 0.1)
        pdf.rect(100, 500, 200, 120, fill=1)
        pdf.drawString(100, 450, "Red bars are ferries.")
    renderer = PageRenderer(tmp_path / "views", 10**9, BUDGET, pools().view)
    picture = Image.open(io.BytesIO(renderer.png(coloured, 1, 72)))
    assert picture.mode == "RGB" and picture.convert("RGB").getpixel((200, 842 - 560)) == (204, 26, 26)
    assert Image.open(io.BytesIO(renderer.png(report_pdf, 1, 72))).mode == "L"


def test_a_page_of_too_many_characters_is_refused_in_one_line(tmp_path: Path) -> None:
    """Its layout would travel back to the server: some 240,000 characters on a page are not placed."""
    path = tmp_path / "dense.pdf"
    with drawn_pdf(path) as pdf:
        pdf.setFont("Helvetica", 0.3)
        for line in range(2500):
            pdf.drawString(10, 10 + 0.3 * line, "harbour " * 12)
    with pytest.raises(ViewError, match=r"the page holds 2\d\d,\d{3} characters, more than the 200,000 a view places"):
        sentence_boxes(path, 1, 0, 10, viewer=pools().view, budget=BUDGET)


@settings(max_examples=100, deadline=None)
@given(
    words=st.lists(
        st.sampled_from(["harbour", "fish", "office", "tide", "of", "the", "ﬁne", "quay", "a"]), max_size=60
    ),
    seps=st.lists(st.sampled_from([" ", "  ", "\n", "-\n", " \r\n"]), min_size=60, max_size=60),
    ligatures=st.booleans(),
)
def test_alignment_maps_every_character_onto_the_same_letter(
    words: list[str], seps: list[str], ligatures: bool
) -> None:
    """Whatever the two extractions do with spaces, line-end hyphens and ligatures, each of docbot's letters is
    placed on a pdfium character showing that letter, in order."""
    ours = " ".join(words)
    theirs = "".join(w + s for w, s in zip(words, seps, strict=False))
    if ligatures:
        theirs = theirs.replace("fi", "ﬁ")
    boxes: list[Box | None] = [None if c.isspace() else Box(0, 0, 1, 1) for c in theirs]
    layout = align(ours, PageChars.of(theirs, boxes, [0] * len(theirs)))
    placed = [(i, layout.to_char[i]) for i, c in enumerate(ours) if not c.isspace()]
    assert all(j >= 0 for _, j in placed)
    assert all(
        set(unicodedata.normalize("NFKC", ours[i])) & set(unicodedata.normalize("NFKC", theirs[j])) for i, j in placed
    )
    assert [j for _, j in placed] == sorted(j for _, j in placed)


def test_warm_up_starts_a_viewer_worker_ahead_of_the_first_view(report_pdf: Path, tmp_path: Path) -> None:
    pool = ViewerPool()
    view_pdf.warm_up(pool, BUDGET).join(timeout=120)
    assert len(pool._idle) == 1 and pool._idle[0].process.poll() is None
    assert PageRenderer(tmp_path / "views", 10**9, BUDGET, pool).png(report_pdf, 1, 40).startswith(b"\x89PNG")
    assert len(pool._idle) == 1  # the warm worker drew it and is back
    pool.close()


def test_a_page_declared_huge_is_drawn_smaller_not_out_of_memory(tmp_path: Path) -> None:
    """A page 2,000 points square at 600 dpi would be 278 million pixels: it is drawn at about MAX_PIXELS."""
    from bot.view.pdfium_pages import MAX_PIXELS

    path = tmp_path / "poster.pdf"
    with drawn_pdf(path, pagesize=(2000, 2000)) as pdf:
        pdf.drawString(100, 1900, "A harbour poster.")
    picture = Image.open(io.BytesIO(PageRenderer(tmp_path / "views", 10**9, BUDGET, pools().view).png(path, 1, 600)))
    assert MAX_PIXELS * 0.99 <= picture.width * picture.height <= MAX_PIXELS * 1.001  # whole pixels, rounded up
    assert picture.width == picture.height
