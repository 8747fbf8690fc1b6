"""Hostile input, generated: thousands of random and mutated files, texts, question-set lines and API bodies.

Property: nothing crashes. A loader either returns text or raises ``LoadError`` with a one-line reason; the
chunker keeps its offset invariants on any Unicode; the question-set parser returns items or ``line N: ...``
problems; the API never answers 5xx (and no stream ends in a 500 error event).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import app_client, pools
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_chunking import assert_well_formed, split
from test_loaders import write_docx

from app import Services
from bench.pdfs import text_pdf
from bot.eval.questions import QuestionSetError, load_question_set, parse_line
from index.errors import LoadError
from index.loaders import SUPPORTED_SUFFIXES
from index.parse_pool import ParseBudget

SUFFIXES = sorted(SUPPORTED_SUFFIXES)
MAX_BYTES = 1024 * 1024
#: Far more than any of these files needs (milliseconds): a file that reaches it hangs a parser.
BUDGET = ParseBudget(timeout_s=20, memory_mb=1024)
SLOW_PARSE = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}


def _parse(name: str, data: bytes) -> None:
    """What indexing does with a file's bytes: documents with text, or a one-line LoadError, within the budget.

    Parsed as indexing parses, in a worker process: a hang is a failure here (the budget's reason), and so is any
    exception but LoadError (the worker reports one as "the reader failed").
    """
    try:
        loaded = pools().parse.parse(Path(name), data, name, max_bytes=MAX_BYTES, budget=BUDGET)
    except LoadError as exc:
        reason = str(exc)
        assert reason and "\n" not in reason and len(reason) < 400, reason
        assert not reason.startswith(("took longer", "the reader failed", "the file crashed")), (name, reason)
        return
    assert loaded.documents and all(d.text.strip() for d in loaded.documents)
    for document in loaded.documents:
        assert document.text == document.text.strip()
        assert not any(ord(ch) < 32 and ch != "\n" for ch in document.text)


# --- loaders ---------------------------------------------------------------------------------------


@settings(max_examples=1500, **SLOW_PARSE)
@given(data=st.binary(max_size=4096), suffix=st.sampled_from(SUFFIXES))
def test_random_bytes_under_any_supported_name(data: bytes, suffix: str) -> None:
    _parse(f"random{suffix}", data)


@settings(max_examples=600, **SLOW_PARSE)
@given(
    text=st.text(max_size=2000),
    encoding=st.sampled_from(["utf-8", "utf-16", "utf-8-sig", "latin-1", "cp1252"]),
    suffix=st.sampled_from([".txt", ".md", ".html"]),
)
def test_random_unicode_in_any_encoding(text: str, encoding: str, suffix: str) -> None:
    _parse(f"text{suffix}", text.encode(encoding, errors="replace"))


HTML_BITS = st.sampled_from(
    [
        "<p>",
        "</p>",
        "<div>",
        "</div>",
        "<script>alert(1)</script>",
        "<style>p{}</style>",
        "<title>",
        "</title>",
        "<h1>",
        "<!--",
        "-->",
        "<![CDATA[",
        "<img src=x onerror=alert(1)>",
        "&amp;",
        "&#0;",
        "&#x110000;",
        "<table><tr><td>",
        "<svg><script>",
        "\x00",
        "<" * 50,
        "<b>" * 200,
    ]
)


@settings(max_examples=600, **SLOW_PARSE)
@given(parts=st.lists(st.one_of(HTML_BITS, st.text(max_size=40)), max_size=120))
def test_random_tag_soup(parts: list[str]) -> None:
    _parse("page.html", "".join(parts).encode())


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """A valid PDF and DOCX, to be mutated."""
    folder = tmp_path_factory.mktemp("samples")
    pdf = text_pdf(folder / "sample.pdf", [["The harbour opens at six."], ["Ferries leave on the hour."]], "Harbour")
    return {".pdf": pdf.read_bytes(), ".docx": write_docx(folder / "sample.docx", title="Harbour").read_bytes()}


MUTATIONS = st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=12)


@pytest.mark.slow
@settings(max_examples=400, **SLOW_PARSE)
@given(suffix=st.sampled_from([".pdf", ".docx"]), flips=MUTATIONS, cut=st.floats(0.05, 1))
def test_mutated_pdf_and_docx(
    samples: dict[str, bytes], suffix: str, flips: list[tuple[float, int]], cut: float
) -> None:
    data = bytearray(samples[suffix])
    for where, value in flips:
        data[int(where * len(data))] = value
    _parse(f"mutated{suffix}", bytes(data[: max(1, int(cut * len(data)))]))


# --- chunker ---------------------------------------------------------------------------------------


@settings(max_examples=500, deadline=None)
@given(
    text=st.text(st.characters(codec="utf-8"), max_size=3000),
    size=st.integers(100, 600),
    overlap_share=st.floats(0, 0.9),
)
def test_chunk_offsets_hold_for_any_unicode(text: str, size: int, overlap_share: float) -> None:
    overlap = min(size - 1, int(size * overlap_share))
    assert_well_formed(text, split(text, size=size, overlap=overlap), size)


# --- question sets ---------------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
FIELDS = ["id", "question", "answers", "evidence", "answerable", "history", "source", "extra"]
ITEMS = st.dictionaries(st.sampled_from(FIELDS), JSON | st.text(max_size=30) | st.lists(st.text(max_size=10)))
LINES = st.one_of(
    st.text(max_size=200),
    JSON.map(json.dumps),
    ITEMS.map(json.dumps),
    st.builds(
        lambda q, a, e, ok, h: json.dumps(
            {"id": q[:5], "question": q, "answers": a, "evidence": e, "answerable": ok, "history": h}
        ),
        st.text(max_size=30),
        st.lists(st.text(max_size=10), max_size=3),
        st.text(max_size=20),
        st.booleans(),
        st.lists(st.lists(st.text(max_size=10), max_size=3), max_size=2),
    ),
)


@settings(max_examples=1000, deadline=None)
@given(line=LINES)
def test_question_set_line_is_an_item_or_named_problems(line: str) -> None:
    item, problems = parse_line(line)
    assert (item is None) == bool(problems)
    assert all(isinstance(p, str) and p and "\n" not in p for p in problems)


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(LINES, max_size=8))
def test_question_set_file_is_questions_or_line_numbered_errors(tmp_path_factory: Any, lines: list[str]) -> None:
    path = tmp_path_factory.mktemp("sets") / "set.jsonl"
    path.write_text("\n".join(lines), encoding="utf-8", errors="surrogatepass")
    try:
        items = load_question_set(path)
    except QuestionSetError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert problem.startswith(("line ", "no questions in the file", "cannot read the file")), problem
        return
    assert items and len({i.id for i in items}) == len(items)


# --- the API's JSON bodies -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def app_settings() -> dict[str, Any]:
    """No rate limit in the way of the fuzzing."""
    return {"rate_limit_per_minute": 10**9, "max_question_chars": 500}


@pytest.fixture(scope="module")
def client(services: Services) -> Iterator[Any]:
    """The whole app (API, embed, Gradio page) in-process over the indexed seeds (conftest's ``services``)."""
    with app_client(services, base_url="http://127.0.0.1", raise_server_exceptions=False) as test_client:
        yield test_client


ROUTES = ["/api/ask", "/api/ask/stream", "/v1/chat/completions"]
TEXT = st.text(max_size=120) | st.sampled_from(["What did coalition forces resume?", "", " ", "\x00", "?" * 600])
ASK_BODIES = st.fixed_dictionaries(
    {},
    optional={
        "question": TEXT | JSON,
        "history": st.lists(st.lists(TEXT, max_size=3), max_size=3) | JSON,
        "k": st.integers(-5, 80) | JSON,
        "stream": st.booleans(),
        "extra": JSON,
    },
)
MESSAGE = st.fixed_dictionaries(
    {}, optional={"role": st.sampled_from(["user", "assistant", "system", "tool", "x"]) | JSON, "content": TEXT | JSON}
)
CHAT_BODIES = st.fixed_dictionaries(
    {}, optional={"messages": st.lists(MESSAGE, max_size=4) | JSON, "stream": st.booleans() | JSON, "model": JSON}
)


def _assert_no_server_error(response: Any) -> None:
    assert response.status_code < 500, response.text[:500]
    if response.status_code == 200 and "text/event-stream" in response.headers["content-type"]:
        assert '"status": 500' not in response.text and '"code": 500' not in response.text, response.text[-500:]


@pytest.mark.slow
@settings(max_examples=700, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=st.sampled_from(ROUTES), body=JSON | ASK_BODIES | CHAT_BODIES)
def test_random_json_bodies_never_get_a_5xx(client: Any, route: str, body: object) -> None:
    _assert_no_server_error(client.post(route, json=body))


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    route=st.sampled_from(ROUTES),
    raw=st.binary(max_size=300) | st.text(max_size=300).map(str.encode),
    content_type=st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded", ""]),
)
def test_raw_bodies_never_get_a_5xx(client: Any, route: str, raw: bytes, content_type: str) -> None:
    _assert_no_server_error(client.post(route, content=raw, headers={"content-type": content_type}))
