"""The page's pure helpers: escaped rendering, [n] links, example questions, feedback lines, login."""

from __future__ import annotations

from dataclasses import replace
from html import escape
from html.parser import HTMLParser

from conftest import SEED_DOC

from bot.answer.citations import Answer, Citation, view_path
from bot.documents.examples import example_questions, names_in
from bot.documents.indexed import Context, IndexedDocument
from bot.view.render import (
    Turn,
    answer_html,
    chat_messages,
    documents_html,
    failure_html,
    notice_html,
    question_html,
    removed_html,
    report_html,
    sources_html,
    status_html,
    store_down_html,
)
from bot.web.page.chat import vote_of
from index.pipeline import IndexReport

PAYLOAD = '<script>window.__xss=1</script><img src=x onerror="window.__xss=1">'


class _Tags(HTMLParser):
    """Every start tag and attribute name in a piece of HTML."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attributes: set[str] = set()
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes.update(name for name, _ in attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse_links(html: str) -> list[dict[str, str]]:
    """The attributes of every ``<a>``."""
    found: list[dict[str, str]] = []

    class Links(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag == "a":
                found.append({name: value or "" for name, value in attrs})

    Links().feed(html)
    return found


def parse(html: str) -> _Tags:
    parser = _Tags()
    parser.feed(html)
    parser.close()
    return parser


def _citation(number: int = 1, passage: str = f"Before. The payload {PAYLOAD} is here. After.") -> Citation:
    quote = f"The payload {PAYLOAD} is here."
    start = passage.find(quote)
    return Citation(
        number=number,
        chunk_id=f"c{number}",
        source=f"evil{PAYLOAD}.txt",
        title=f"Title {PAYLOAD}",
        page=2,
        passage=passage,
        passage_start=100,
        passage_end=100 + len(passage),
        quote=quote,
        quote_start=100 + start,
        quote_end=100 + start + len(quote),
        support=0.9,
        supported=True,
        view_url=view_path(f"c{number}", 100 + start, 100 + start + len(quote)),
    )


def _answer(question: str = f"What is {PAYLOAD}?") -> Answer:
    return Answer(
        question=question,
        text=f"The payload {PAYLOAD} is here. [1] Also this [1, 2].",
        citations=[_citation(1), _citation(2)],
        timings={"total_ms": 1234.0},
    )


def _assert_inert(html: str) -> None:
    tags = parse(html)
    assert "script" not in tags.tags and "img" not in tags.tags
    assert not any(name.startswith("on") for name in tags.attributes)
    assert PAYLOAD in "".join(tags.text)


def test_messages_escape_questions_and_answers_and_link_markers() -> None:
    answer = _answer()
    html = answer_html(answer.text, 3, answer)
    _assert_inert(html)
    _assert_inert(question_html(answer.question))
    markers = [attrs for attrs in parse_links(html) if "cite" in attrs.get("class", "").split()]
    assert len(markers) == 3  # [1], then [1, 2] as two links
    first, second = _citation(1), _citation(2)
    assert [m["href"] for m in markers] == [first.view_url, first.view_url, second.view_url]  # the document view
    assert [m["class"] for m in markers] == ["cite to-src-3-1", "cite to-src-3-1", "cite to-src-3-2"]  # its card
    assert all(m["target"] == "_blank" for m in markers)  # without JavaScript: a new tab
    assert "Source 1: Title &lt;script&gt;" in html
    streaming = answer_html("Partial [1]", 0)  # no citations yet: the marker jumps to where the card will be
    assert 'class="a streaming"' in streaming and 'href="#src-0-1"' in streaming


def test_chat_messages_alternate_user_and_assistant() -> None:
    turns = [Turn(_answer("first")), Turn(_answer("second"))]
    messages = chat_messages(turns)
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert 'class="cite to-src-1-1"' in messages[3]["content"]


def test_answer_notes_show_notices_and_dropped_sentences() -> None:
    answer = _answer()
    answer.notice = "The <b>local</b> model failed."
    answer.unsupported = ["one", "two"]
    html = answer_html(answer.text, 0, answer)
    assert "The &lt;b&gt;local&lt;/b&gt; model failed." in html
    assert "2 sentences the passages did not support left out." in html
    refused = Answer(question="q", text="The documents do not cover this question.", refused=True)
    assert 'class="a refused"' in answer_html(refused.text, 0, refused)


def test_sources_panel_escapes_and_highlights_the_supporting_sentence() -> None:
    citation = _citation()
    text = f"Earlier text. {citation.passage} Later text."
    lo = text.find(citation.passage)
    quote_lo = lo + citation.passage.find(citation.quote)
    context = Context(
        text=text,
        passage=(lo, lo + len(citation.passage)),
        quote=(quote_lo, quote_lo + len(citation.quote)),
        clipped_before=True,
        clipped_after=False,
    )
    answer = _answer()
    html = sources_html([Turn(_answer("older")), Turn(answer, [context])])
    _assert_inert(html)
    tags = parse(html)
    assert tags.tags.count("article") == 4 and tags.tags.count("mark") == 5  # 4 passages + 1 context
    assert 'id="src-1-1"' in html and 'id="src-0-2"' in html
    assert '<section class="src-turn shown" id="src-turn-1">' in html
    assert '<section class="src-turn" id="src-turn-0">' in html
    assert "page 2" in html and "in 1.2 s" in html
    assert "Show surrounding text" in html and "… Earlier text." in html
    quote = citation.quote.replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    assert f'<mark class="src-quote">{quote}</mark>' in html


def test_sources_panel_without_answers_or_citations() -> None:
    assert "Sources appear here" in sources_html([])
    refused = Turn(Answer(question="What is the capital of Libya?", text="no", refused=True))
    assert "No passage of the documents answers this question." in sources_html([refused])
    store_down = Turn(refused.answer, no_sources=f"The store is down {PAYLOAD}")
    _assert_inert(sources_html([store_down]))
    assert "The store is down" in sources_html([store_down]) and "No passage" not in sources_html([store_down])


def test_header_tells_models_and_an_empty_index() -> None:
    full = status_html("extractive", "all-MiniLM", 1, 8)
    assert "extractive" in full and "all-MiniLM" in full and "1 document · 8 passages" in full
    assert "The index is empty" not in full
    assert "The index is empty" in status_html("local", "m", 0, 0)
    down = store_down_html("extractive", f"m{PAYLOAD}", f"at http://127.0.0.1:8000/{PAYLOAD}")
    _assert_inert(down)
    assert "The vector store at http://127.0.0.1:8000/" in down and "is unreachable" in down
    assert "Answers resume by themselves" in down and "document ·" not in down and "index is empty" not in down


def test_a_failed_upload_says_so_above_the_refused_files() -> None:
    html = failure_html(f"The files were not added {PAYLOAD}", [f"x.exe{PAYLOAD}: not supported"])
    _assert_inert(html)
    assert html.index("The files were not added") < html.index("Refused: x.exe")
    assert "<ul" not in failure_html("The files were not added.", [])


def test_documents_table_and_reports_escape_names() -> None:
    document = IndexedDocument("/r", f"a{PAYLOAD}.txt", f"T{PAYLOAD}", 3, 0, "2025-01-02T03:04:05+00:00", True)
    html = documents_html([document])
    _assert_inert(html)
    assert "2025-01-02 03:04:05 UTC" in html and "(uploaded)" in html
    owned = documents_html([replace(document, owner=f"ann{PAYLOAD}")])
    _assert_inert(owned)
    assert f"(uploaded by ann{escape(PAYLOAD)})" in owned
    assert "No documents yet" in documents_html([])
    report = IndexReport(added=[f"x{PAYLOAD}.txt"], failed=[("bad.pdf", f"corrupt {PAYLOAD}")], chunks_embedded=4)
    _assert_inert(report_html(report, [f"y{PAYLOAD}.exe: not supported"]))
    assert "You can ask about them now." in report_html(report, [])
    _assert_inert(removed_html(document, 3))
    _assert_inert(notice_html(PAYLOAD))


def test_example_questions_come_from_the_corpus_deterministically() -> None:
    text = SEED_DOC.read_text()
    passages = [("isis resurgence iraq", p) for p in text.split("\n\n")]
    questions = example_questions(passages)
    assert questions == example_questions(passages)
    assert 1 <= len(questions) <= 4
    assert "What do the documents say about Islamic State?" in questions
    assert "What happened in June 2014?" in questions
    assert all(q.endswith("?") and "<" not in q for q in questions)
    assert example_questions([("A Guide to Harbour Ferries", "no names here.")]) == [
        "What is A Guide to Harbour Ferries about?"
    ]
    assert example_questions([]) == []


def test_names_skip_sentence_starts() -> None:
    assert names_in("In April the Islamic State grew. According to Con Coflin it did.") == [
        "Islamic State",
        "Con Coflin",
    ]


def test_votes_from_the_page() -> None:
    assert [vote_of(v) for v in (True, False, "", "Like", "Dislike")] == ["up", "down", "cleared", "up", "down"]


def test_the_page_styles_and_script_come_from_the_static_files() -> None:
    from bot.web.embed import STATIC
    from bot.web.page import page_assets

    assets = page_assets()
    assert assets["css"] == (STATIC / "page.css").read_text(encoding="utf-8") and ".src-card.active" in assets["css"]
    assert assets["head"].startswith("<script>\n") and assets["head"].endswith("</script>")
    assert 'closest("a.cite")' in assets["head"] and "<script" not in (STATIC / "page.js").read_text(encoding="utf-8")
