"""The evidence viewer (``/view/{reference}``) in-process: links from answers, sanitising, access, removed and
moved documents, hostile references. One app for the module over real Chroma with the hashing embedder.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from answer_fixtures import clean_settings, write_docs
from conftest import HASHING_COVERAGE
from fastapi.testclient import TestClient
from helpers import app_client, indexed, pdfium_boxes

from app import Services, build
from bench.pdfs import ACROSS, WRAPPED, harbour_report_pdf, two_column_pdf
from bot.answer.citations import view_path
from bot.view.evidence import REMOVED
from index.protocols import Embedder

KEY = "viewer-test-key-7c1d2e"
QUESTION = "What did coalition forces resume because of the growing ISIS force?"
HOSTILE_TEXT = (
    "Hostile notes\n\nThe harbour closes at dusk every day. "
    '<script>alert("x")</script> <img src=x onerror=alert(1)> <img src="http://evil.example/t.png"> '
    '<a href="javascript:alert(2)">click</a> The ferry leaves at noon.\n'
)
HOSTILE_HTML = (
    "<html><head><title>Lighthouse</title><script>alert(1)</script></head><body>"
    '<h1>Lighthouse</h1><p onclick="alert(3)">The lamp was lit in 1890. <img src="http://evil.example/a.png" '
    'onerror="alert(4)"> The keeper lived on the island.</p><iframe src="http://evil.example"></iframe>'
    "<p>&lt;script&gt;alert(5)&lt;/script&gt; is shown as text.</p></body></html>"
)
GAP_SENTENCE = "The lamp room of the old lighthouse faces east."
#: Every tag a view may contain: nothing that runs or loads anything but docbot's own stylesheet.
VIEW_TAGS = {"html", "head", "meta", "title", "link", "body", "header", "h1", "p", "nav", "a", "main", "mark", "span"}
PDF_TAGS = VIEW_TAGS | {"div", "img", "svg", "rect"}


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags_of(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Tags()
    parser.feed(html)
    parser.close()
    return parser.tags


def assert_inert(html: str, allowed: set[str] = VIEW_TAGS) -> None:
    """Only the viewer's own tags, no event handler, no remote or script address."""
    for tag, attrs in tags_of(html):
        assert tag in allowed, tag
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        for name in ("href", "src"):
            value = (attrs.get(name) or "").lower()
            assert not value.startswith(("http", "//", "javascript:")), (tag, attrs)


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory, hashing_embedder: Embedder) -> Services:
    root = tmp_path_factory.mktemp("viewer")
    docs = write_docs(
        root / "docs",
        **{
            "hostile.txt": HOSTILE_TEXT,
            "lighthouse.html": HOSTILE_HTML,
            "gone.md": "# Gone\n\nThis note is removed later.\n",
            "moved.txt": "Moving notes\n\nThe bridge opened in 1932. It was painted red.\n",
            "changed.txt": "The tower is tall. Its bell rings at six.",
        },
    )
    harbour_report_pdf(docs / "harbour-report.pdf")
    two_column_pdf(docs / "gap-report.pdf", [["The pier was rebuilt in 1951."], [], [GAP_SENTENCE]], "Gap report")
    settings = clean_settings(root / "data", api_keys=KEY, **HASHING_COVERAGE)
    return indexed(build(settings, embedder=hashing_embedder), docs)


@pytest.fixture(scope="module")
def web(services: Services) -> Iterator[TestClient]:
    """The app with the key sent (a caller that may read)."""
    with app_client(services, key=KEY) as client:
        yield client


def link(services: Services, source: str, sentence: str) -> str:
    """A citation's view_url for ``sentence`` of the document ``source`` (line breaks in the text count as spaces)."""
    chunk = next(c for c in services.store.by_source(source) if sentence in c.text.replace("\n", " "))
    lo = int(chunk.metadata["start"]) + chunk.text.replace("\n", " ").index(sentence)
    return view_path(chunk.id, lo, lo + len(sentence))


def cited(html: str) -> str:
    """The text of the highlighted sentence."""
    start = html.index('<mark class="quote" id="cited">') + len('<mark class="quote" id="cited">')
    return html[start : html.index("</mark>", start)]


def test_an_answers_citation_opens_its_document_at_the_supporting_sentence(web: TestClient) -> None:
    answer = web.post("/api/ask", json={"question": QUESTION}).json()
    citation = answer["citations"][0]
    assert citation["view_url"].startswith(f"/view/{citation['chunk_id']}?quote=")
    response = web.get(citation["view_url"])
    assert response.status_code == 200, response.text
    assert cited(response.text) == citation["quote"]
    assert '<mark class="passage">' in response.text
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'none'" in policy
    assert_inert(response.text)
    assert web.get("/view.css").status_code == 200


def test_openai_citations_carry_the_view_url(web: TestClient) -> None:
    body = {"messages": [{"role": "user", "content": QUESTION}]}
    citations = web.post("/v1/chat/completions", json=body).json()["citations"]
    assert citations and all(c["view_url"].startswith("/view/") for c in citations)


@pytest.mark.parametrize(
    ("source", "sentence", "escaped"),
    [
        ("hostile.txt", "The ferry leaves at noon.", "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"),
        ("lighthouse.html", "The keeper lived on the island.", "&lt;script&gt;alert(5)&lt;/script&gt;"),
    ],
)
def test_markup_in_a_document_is_shown_as_text_never_live(
    web: TestClient, services: Services, source: str, sentence: str, escaped: str
) -> None:
    response = web.get(link(services, source, sentence))
    assert response.status_code == 200, response.text
    assert cited(response.text) == sentence
    assert escaped in response.text
    assert "evil.example" not in response.text or "&lt;img" in response.text  # remote addresses only as text
    assert_inert(response.text)


def test_a_reader_who_may_not_read_gets_401(web: TestClient, services: Services) -> None:
    url = link(services, "hostile.txt", "The ferry leaves at noon.")
    anonymous = TestClient(web.app, base_url=str(web.base_url))
    assert anonymous.get(url).status_code == 401
    assert anonymous.get(url, headers={"Authorization": "Bearer wrong-key-000"}).status_code == 401


def test_a_document_removed_since_the_answer_says_so(web: TestClient, services: Services) -> None:
    url = link(services, "gone.md", "This note is removed later.")
    assert web.get(url).status_code == 200
    services.store.delete([c.id for c in services.store.by_source("gone.md")])
    response = web.get(url)
    assert response.status_code == 404
    assert REMOVED in response.text.replace("&#x27;", "'")


def test_a_file_moved_away_shows_the_text_the_index_keeps(web: TestClient, services: Services) -> None:
    url = link(services, "moved.txt", "It was painted red.")
    folder = Path(str(services.store.by_source("moved.txt")[0].metadata["root"]))
    (folder / "moved.txt").rename(folder / "moved.bak")
    try:
        response = web.get(url)
    finally:
        (folder / "moved.bak").rename(folder / "moved.txt")
    assert response.status_code == 200
    assert "no longer where it was indexed" in response.text
    assert cited(response.text) == "It was painted red."


def test_a_file_changed_since_indexing_shows_the_indexed_text(web: TestClient, services: Services) -> None:
    url = link(services, "changed.txt", "Its bell rings at six.")
    folder = Path(str(services.store.by_source("changed.txt")[0].metadata["root"]))
    (folder / "changed.txt").write_text("Rewritten entirely: the tower fell.")
    response = web.get(url)
    assert response.status_code == 200
    assert "changed since it was indexed" in response.text
    assert cited(response.text) == "Its bell rings at six." and "Rewritten" not in response.text


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/view/..%2F..%2F..%2Fetc%2Fpasswd", 404),  # not a /view/{reference} address at all
        ("/view/..%5C..%5Cetc%5Cpasswd", 400),
        ("/view/" + "a" * 32 + "?quote=../../etc", 400),
        ("/view/" + "0" * 32, 404),
        ("/view/" + "f" * 32 + "?quote=99999999999999999999-1", 400),
        ("/view/" + "f" * 32 + "?page=99999999999999999999", 422),
        ("/view/" + "f" * 32 + "?page=-1", 422),
    ],
)
def test_hostile_references_get_a_one_line_reason(web: TestClient, path: str, status: int) -> None:
    response = web.get(path)
    assert response.status_code == status, response.text
    assert "Traceback" not in response.text and "/etc/passwd" not in response.text


def test_a_page_of_a_document_without_pages_is_refused(web: TestClient, services: Services) -> None:
    response = web.get(link(services, "hostile.txt", "The ferry leaves at noon.").replace("#cited", "&page=2"))
    assert response.status_code == 400 and "only a PDF has" in response.text


def test_a_quote_outside_its_passage_is_refused(web: TestClient, services: Services) -> None:
    chunk = services.store.by_source("hostile.txt")[0]
    end = int(chunk.metadata["end"])
    response = web.get(view_path(chunk.id, end, end + 5))
    assert response.status_code == 400
    assert "not inside the cited passage" in response.text


# --- PDF: the drawn page with the sentence's boxes -------------------------------------------------------


def rects(html: str, css: str) -> list[tuple[float, float, float, float]]:
    """The (left, top, right, bottom) page fractions of the view's SVG rectangles of class ``css``."""
    found = []
    for tag, attrs in tags_of(html):
        if tag == "rect" and attrs.get("class") == css:
            x, y, w, h = (float(attrs[name] or 0) for name in ("x", "y", "width", "height"))
            found.append((x, y, x + w, y + h))
    return found


def inside(inner: tuple[float, ...], outer: tuple[float, ...], slack: float = 1e-4) -> bool:
    return (
        outer[0] - slack <= inner[0]
        and outer[1] - slack <= inner[1]
        and inner[2] <= outer[2] + slack
        and inner[3] <= outer[3] + slack
    )


@pytest.mark.parametrize("sentence", [WRAPPED, ACROSS], ids=["over-lines", "over-the-column-break"])
def test_a_pdf_citation_shows_its_page_with_the_sentence_boxed(
    web: TestClient, services: Services, sentence: str
) -> None:
    url = link(services, "harbour-report.pdf", sentence)
    response = web.get(url)
    assert response.status_code == 200, response.text
    assert_inert(response.text, PDF_TAGS)
    boxes = rects(response.text, "quote")
    mine, others = pdfium_boxes(services.settings.data_dir.parent / "docs" / "harbour-report.pdf", 2, sentence)
    assert len(boxes) >= 2  # one per line fragment
    assert all(any(inside(char, box) for box in boxes) for char in mine)
    centres = [((c[0] + c[2]) / 2, (c[1] + c[3]) / 2) * 2 for c in others]
    assert not any(inside(centre, box, slack=0) for centre in centres for box in boxes)
    assert all(any(inside(box, passage) for passage in rects(response.text, "passage")) for box in boxes)
    assert 'id="cited"' in response.text
    assert "page 2 of 3" in response.text
    quote = url.split("quote=")[1].split("#")[0]
    nav = dict(re.findall(r'<a class="view-(prev|next)" href="([^"]+)"', response.text))
    assert nav == {"prev": f"?page=1&amp;quote={quote}&amp;zoom=100", "next": f"?page=3&amp;quote={quote}&amp;zoom=100"}
    picture = re.search(r'<img src="([^"]+)"', response.text)
    assert picture is not None and picture.group(1).endswith("/page.png?page=2&amp;zoom=100")


def test_a_pdf_page_is_drawn_sharper_when_zoomed(web: TestClient, services: Services) -> None:
    from PIL import Image

    reference = link(services, "harbour-report.pdf", ACROSS).split("?")[0]
    sizes = []
    for zoom in (100, 200):
        response = web.get(f"{reference}/page.png", params={"page": 2, "zoom": zoom})
        assert response.status_code == 200 and response.headers["content-type"] == "image/png"
        sizes.append(Image.open(io.BytesIO(response.content)).size)
    assert sizes[1][0] == pytest.approx(2 * sizes[0][0], abs=2)
    zoomed = web.get(link(services, "harbour-report.pdf", ACROSS).replace("#cited", "&zoom=200"))
    assert 'class="view-sheet zoom-200"' in zoomed.text and "zoom=200" in zoomed.text
    assert web.get(f"{reference}/page.png", params={"page": 2, "zoom": 7}).status_code == 400
    assert web.get(f"{reference}/page.png", params={"page": 9}).status_code == 404


def test_another_page_of_the_pdf_has_no_highlight_and_leads_back(web: TestClient, services: Services) -> None:
    url = link(services, "harbour-report.pdf", ACROSS).replace("#cited", "")
    response = web.get(url + "&page=3")
    assert response.status_code == 200
    assert "page 3 of 3" in response.text and not rects(response.text, "quote") and not rects(response.text, "passage")
    back = re.search(r'<a class="view-prev" href="\?([^"]+)"', response.text)
    assert back is not None
    again = web.get(url.split("?")[0] + "?" + back.group(1).replace("&amp;", "&"))
    assert "page 2 of 3" in again.text and rects(again.text, "quote")


def test_every_link_of_a_view_keeps_the_collection_its_address_names(web: TestClient, services: Services) -> None:
    answer = web.post("/api/ask", json={"question": QUESTION}).json()
    assert all("&collection=default#cited" in c["view_url"] for c in answer["citations"])
    url = link(services, "harbour-report.pdf", ACROSS).replace("#cited", "&collection=default")
    response = web.get(url)
    assert response.status_code == 200, response.text
    links = re.findall(r'<a class="view-[a-z]+(?: current)?" href="([^"]+)"', response.text)
    assert len(links) >= 2 + 4 and all("collection=default" in href for href in links)  # pages and zoom levels
    picture = re.search(r'<img src="([^"]+)"', response.text)
    assert picture is not None and "collection=default" in picture.group(1)
    drawn = web.get("/view/" + picture.group(1).replace("&amp;", "&"))
    assert drawn.status_code == 200 and drawn.headers["content-type"] == "image/png"
    assert web.get(url.replace("collection=default", "collection=nope")).status_code == 404
    assert web.get(url.replace("collection=default", "collection=Not%20A%20Name")).status_code == 422


def test_a_pdf_that_cannot_be_drawn_in_time_shows_its_text_with_the_reason(services: Services) -> None:
    """The viewer's worker over view_timeout_s (here a budget no PDF meets): killed, the view says why in one line
    and shows the page's text with the sentence highlighted; the picture's route answers 422 with the reason."""
    slow = services.settings.model_copy(update={"view_timeout_s": 0.001, "data_dir": services.settings.data_dir})
    client = app_client(
        Services(slow, services.embedder, services.store, services.indexer, services.state, services.pools), key=KEY
    )
    pdf = services.settings.data_dir.parent / "docs" / "harbour-report.pdf"
    os.utime(pdf, ns=(pdf.stat().st_atime_ns, pdf.stat().st_mtime_ns + 10**9))  # a new version: nothing cached
    url = link(services, "harbour-report.pdf", WRAPPED)
    response = client.get(url)
    assert response.status_code == 200
    notice = re.search(r'<p class="view-notice" role="status">([^<]+)</p>', response.text)
    assert notice is not None and "the page cannot be drawn" in notice.group(1)
    assert " ".join(cited(response.text).split()) == WRAPPED
    picture = client.get(url.split("?")[0] + "/page.png?page=2&zoom=150")
    assert picture.status_code == 422 and "\n" not in picture.text.strip()


def test_page_numbers_count_every_page_of_the_pdf(web: TestClient, services: Services) -> None:
    """Page 2 of gap-report.pdf has no text, so the index holds pages 1 and 3: the view still says "page 3 of 3"
    (the file's page count), and its link back goes to page 1, the previous page with text."""
    assert sorted({c.page for c in services.store.by_source("gap-report.pdf")}) == [1, 3]
    response = web.get(link(services, "gap-report.pdf", GAP_SENTENCE))
    assert response.status_code == 200, response.text
    assert "page 3 of 3" in response.text and rects(response.text, "quote")
    assert re.search(r'<a class="view-prev" href="\?page=1&amp;', response.text)
