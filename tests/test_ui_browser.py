"""The chat page in a real browser: Debian's Chromium through Playwright against the real ``docbot serve``.

One server for most tests (seeds plus two hostile documents); a second, with login on and an empty
index, for the empty-index message and admin-only removal. Screenshots go to test-artifacts/ (the README's own is
tests/test_screenshots_browser.py's, written by `make screenshots`).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import EVAL_SET
from live import LiveServer, live_server, screenshot, seeds_with, stored_votes

pytestmark = [pytest.mark.browser, pytest.mark.server]

SEED_ITEM = json.loads(EVAL_SET.read_text().splitlines()[0])  # "In which countries ...?" with its evidence
FOLLOW_UP = "Who is the new leader of that group?"
WAIT_MS = 60_000
DESKTOP = {"viewport": {"width": 1280, "height": 900}}
ADMIN, EDITOR = ("admin", "admin-pass-4821"), ("editor", "editor-pass-9313")
READER = ("reader", "reader-pass-5127")

XSS_TXT = """Security notes for the wiki team

The attack string <script>window.__xss=1</script> was found in a comment field on the staging wiki in March 2024.

A second payload, <img src=x onerror="window.__xss=1">, was hidden in the profile page of the user Mallory Example.
"""
XSS_HTML = """<!doctype html>
<html><head><title>Payload report <img src=x onerror="window.__xss=2"></title>
<script>window.__xss=3</script></head>
<body><h1>Payload report</h1>
<p>The intrusion detection system flagged the string &lt;script&gt;window.__xss=1&lt;/script&gt; in a form
submission from the Lisbon office.</p>
<p>It also flagged &lt;img src=x onerror="window.__xss=1"&gt; as an image tag with an error handler.</p>
<img src=x onerror="window.__xss=4"><script>window.__xss=5</script>
</body></html>
"""
UPLOAD_MD = """# The Quokka Festival

The Quokka Festival is held every year on Rottnest Island in the second week of November.

The festival was founded in 1987 by the ranger Beatrice Holloway to raise money for habitat protection.
"""


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    work = tmp_path_factory.mktemp("ui")
    docs = seeds_with(work, {"xss-note.txt": XSS_TXT, "xss-page.html": XSS_HTML})
    with live_server(work, env={"DOCBOT_ANONYMOUS_ROLE": "admin"}, docs=docs, timeout_s=300) as live:  # laptop setup
        yield live


@pytest.fixture
def page(chromium: Any, server: LiveServer) -> Iterator[Any]:
    context = chromium.new_context(**DESKTOP)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(server.url)
    page.wait_for_selector(".docbot-status")
    yield page
    context.close()


def question_box_ready(page: Any) -> None:
    """Wait until the page's restore step (a stored conversation shown again) enabled the question box."""
    page.wait_for_function(
        "() => { const box = document.querySelector('#docbot-question textarea'); return box && !box.disabled; }"
    )


def ask(page: Any, question: str) -> Any:
    """Type a question, send it, and wait for its answer's sources: the locator of that turn's sources."""
    question_box_ready(page)
    turn = page.locator("#docbot-sources .src-turn").count()
    page.locator("#docbot-question textarea").fill(question)
    page.locator("#docbot-question textarea").press("Enter")
    group = page.locator(f"#src-turn-{turn}")
    group.wait_for(state="attached")
    return group


def open_documents(page: Any) -> None:
    page.get_by_role("tab", name="Documents").click()
    page.locator("#docbot-documents .doc-table, #docbot-documents .doc-none").wait_for()
    page.locator("#docbot-upload").wait_for()


def bot_messages(page: Any) -> Any:
    return page.locator('#docbot-chat [data-testid="bot"]')


def in_viewport(locator: Any) -> bool:
    return bool(
        locator.evaluate(
            "(el) => { const r = el.getBoundingClientRect();"
            " return r.top >= 0 && r.top < window.innerHeight && r.height > 0; }"
        )
    )


def wait_until(condition: Callable[[], bool], timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.2)


def no_horizontal_overflow(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"))


def test_conversation_with_cited_sources(page: Any, server: LiveServer) -> None:
    status = page.locator(".docbot-status").inner_text()
    assert "extractive" in status and "all-MiniLM-L6-v2" in status and "3 documents" in status
    examples = page.locator("#docbot-chat button", has_text="What")
    assert examples.count() >= 1, "a first-time visitor sees example questions"

    first = ask(page, SEED_ITEM["question"])
    answer = bot_messages(page).nth(0)
    assert answer.locator("a.cite").count() >= 1
    evidence = normalise(SEED_ITEM["evidence"])
    cards = first.locator(".src-card")
    assert any(evidence in normalise(cards.nth(i).inner_text()) for i in range(cards.count()))
    assert evidence in normalise(" ".join(first.locator("mark.src-quote").all_inner_texts()))
    assert "isis-resurgence-iraq.txt" in first.locator(".src-meta").first.inner_text()

    answer.locator("a.cite").first.click()
    card = first.locator(".src-card.active")
    card.wait_for()
    assert in_viewport(card)
    screenshot(page, "chat-desktop")
    card.locator("summary").click()
    surrounding = card.locator(".ctx-text")
    assert surrounding.is_visible()
    assert len(normalise(surrounding.inner_text())) > len(normalise(card.locator(".src-passage").inner_text()))

    second = ask(page, FOLLOW_UP)  # "that group": answered only through the conversation's history
    assert bot_messages(page).count() == 2
    assert "do not cover" not in bot_messages(page).nth(1).inner_text()
    assert second.locator(".src-card").count() >= 1 and second.is_visible() and not first.is_visible()
    bot_messages(page).nth(0).locator("a.cite").first.click()  # an earlier answer's marker shows its sources
    first.locator(".src-card.active").wait_for()
    assert first.is_visible() and not second.is_visible()
    screenshot(page, "chat-follow-up")

    page.locator('#docbot-chat button[aria-label="Like"]').first.click()
    wait_until(lambda: stored_votes(server.data_dir) != [])
    record = stored_votes(server.data_dir)[-1]
    assert record["vote"] == "up" and record["question"] == SEED_ITEM["question"]
    assert record["answer"] and record["citations"] and record["time"]
    assert any(evidence in normalise(c["quote"]) for c in record["citations"])

    page.locator("#docbot-new").click()
    page.locator("#docbot-sources .src-intro").wait_for()
    assert bot_messages(page).count() == 0
    assert page.locator("#docbot-chat button", has_text="What").count() >= 1


def test_a_question_the_documents_do_not_answer_shows_related_passages_not_an_answer(
    page: Any, server: LiveServer
) -> None:
    """Issue 26: near the documents' subject, a question they do not answer (the seed never gives a birth date) gets
    the plain "do not give this" reply and the closest passages as related, never as the answer's citations. The
    question it does answer is answered with the sentence that gives it."""
    ask(page, "How many attacks did ISIS carry out in Iraq in April?")
    april = bot_messages(page).last
    april.locator("a.cite").first.wait_for()
    assert "108 attacks" in april.inner_text()
    ask(page, "When was Abu Bakr al-Baghdadi born?")
    answer = bot_messages(page).last
    answer.locator(".a-related").wait_for()
    assert "The documents do not give this" in answer.inner_text()
    assert answer.locator("a.cite").count() == 0  # nothing is cited as if it were the answer
    related = answer.locator(".a-related a.related-open")
    assert related.count() >= 1 and "isis" in related.first.inner_text().lower()
    href = str(related.first.get_attribute("href"))
    with page.context.expect_page() as opened:  # a related passage opens in the evidence viewer
        related.first.click()
    viewer = opened.value
    viewer.wait_for_load_state()
    assert viewer.url.endswith(href) and "ISIS" in viewer.locator("body").inner_text()
    viewer.close()


def choose_file(page: Any, file: Path, attempts: int = 3) -> None:
    """Pick a file in the upload box; on a loaded machine the box may still be re-rendering after a refusal."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in range(attempts):
        page.locator("#docbot-upload input[type=file]").set_input_files([str(file)])
        try:
            page.locator("#docbot-upload").get_by_text(file.name).wait_for(timeout=20_000)
            return
        except PlaywrightTimeout:
            if attempt == attempts - 1:
                raise


def add_document(page: Any, file: Path) -> None:
    """Choose ``file`` in the Documents tab's upload box, press "Add to the index" and wait for its report."""
    choose_file(page, file)
    page.locator("#docbot-add").click()
    page.locator("#docbot-upload-report", has_text=f"Added: {file.name}").wait_for()


def test_upload_then_ask_about_it(page: Any, server: LiveServer, tmp_path: Path) -> None:
    upload = tmp_path / "The Quokka Festival.md"
    upload.write_text(UPLOAD_MD)
    program = tmp_path / "tool.exe"
    program.write_bytes(b"MZ not a document")
    open_documents(page)
    page.locator("#docbot-upload input[type=file]").set_input_files([str(program)])
    page.get_by_text("Invalid file type: tool.exe").wait_for()
    choose_file(page, upload)
    page.locator("#docbot-add").click()
    report = page.locator("#docbot-upload-report .upload-report")
    report.wait_for()
    assert "Added: The_Quokka_Festival.md" in report.inner_text()
    assert (server.data_dir / "uploads" / "The_Quokka_Festival.md").read_text() == UPLOAD_MD
    row = page.locator("#docbot-documents tr", has_text="The Quokka Festival")
    row.wait_for()
    assert "(uploaded)" in row.inner_text() and "UTC" in row.inner_text()
    page.locator(".docbot-status", has_text="4 documents").wait_for()
    screenshot(page, "documents-desktop")

    page.get_by_role("tab", name="Chat").click()
    group = ask(page, "When is the Quokka Festival held?")
    assert "second week of November" in bot_messages(page).last.inner_text()
    assert "The_Quokka_Festival.md" in group.locator(".src-meta").first.inner_text()


def test_documents_and_questions_are_never_run_as_html(page: Any) -> None:
    payloads = ["<script>window.__xss=1</script>", '<img src=x onerror="window.__xss=1">']
    txt = ask(page, "What attack string was found in a comment field on the staging wiki?")
    assert payloads[0] in bot_messages(page).last.inner_text()
    html = ask(page, "What did the intrusion detection system flag from the Lisbon office?")
    assert payloads[0] in bot_messages(page).last.inner_text()
    assert payloads[1] in html.inner_text()
    html.locator("summary").first.click()
    screenshot(page, "xss-inert-chat")
    ask(page, f"{payloads[1]} What was hidden in the profile page of the user Mallory Example?")
    assert payloads[1] in page.locator('#docbot-chat [data-testid="user"]').last.inner_text()
    assert payloads[1] in page.locator("#src-turn-2").inner_text()
    assert txt.locator(".src-card").count() >= 1
    open_documents(page)
    title = 'Payload report <img src=x onerror="window.__xss=2">'
    page.locator("#docbot-documents td", has_text=title).wait_for()
    screenshot(page, "xss-inert-documents")

    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.evaluate("document.querySelectorAll('img[src=\"x\"], img[onerror]').length") == 0


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("sidebar-360", {"viewport": {"width": 360, "height": 740}}),
        ("phone", {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}),
    ],
)
def test_narrow_screens(chromium: Any, server: LiveServer, name: str, options: dict[str, Any]) -> None:
    context = chromium.new_context(**options)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    try:
        page.goto(server.url)
        page.wait_for_selector(".docbot-status")
        assert no_horizontal_overflow(page)
        example = page.locator("#docbot-chat button", has_text="What").first
        example.click()
        page.locator("#src-turn-0 .src-card").first.wait_for(state="attached")
        bot_messages(page).first.locator("a.cite").first.click()
        card = page.locator("#src-turn-0 .src-card.active")
        card.wait_for()
        page.wait_for_timeout(800)  # the smooth scroll
        assert in_viewport(card), "the source is scrolled into view below the chat"
        assert no_horizontal_overflow(page)
        screenshot(page, f"chat-{name}")
        open_documents(page)
        assert no_horizontal_overflow(page)
        screenshot(page, f"documents-{name}")
    finally:
        context.close()


@pytest.fixture(scope="module")
def login_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    work = tmp_path_factory.mktemp("ui-login")
    empty = work / "empty"
    empty.mkdir()
    users = ",".join(f"{u}:{p}" for u, p in (ADMIN, EDITOR)) + f",{READER[0]}:{READER[1]}:reader"
    with live_server(work, env={"DOCBOT_USERS": users}, docs=empty, timeout_s=300) as live:
        yield live


def logged_in(chromium: Any, server: LiveServer, account: tuple[str, str]) -> Any:
    context = chromium.new_context(**DESKTOP)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(server.url)
    page.get_by_label("username").fill(account[0])
    page.get_by_label("password").fill(account[1])
    page.get_by_role("button", name="Login").click()
    page.wait_for_selector(".docbot-status")
    return page


def test_empty_index_login_and_removal_by_owner_or_admin(
    chromium: Any, login_server: LiveServer, tmp_path: Path
) -> None:
    reader = logged_in(chromium, login_server, READER)
    try:
        reader.get_by_role("tab", name="Documents").click()
        note = reader.locator("#docbot-add-note")
        note.get_by_text("You are signed in as reader (reader)").wait_for()
        assert "needs an editor or the administrator" in note.inner_text()
        assert not reader.locator("#docbot-upload").is_visible(), "a reader gets no upload form"
        assert not reader.locator("#docbot-admin").is_visible()
    finally:
        reader.context.close()

    editor = logged_in(chromium, login_server, EDITOR)
    try:
        assert "The index is empty" in editor.locator("#docbot-status-line").inner_text()
        assert "The index is empty" in editor.locator("#docbot-chat").inner_text()
        ask(editor, "What is in the documents?")
        assert "The index is empty" in bot_messages(editor).last.inner_text()
        screenshot(editor, "empty-index")
        open_documents(editor)
        assert not editor.locator("#docbot-add-note").is_visible()
        upload = tmp_path / "quokka.md"
        upload.write_text(UPLOAD_MD)
        add_document(editor, upload)
        editor.locator("#docbot-admin").wait_for()  # an editor may remove the documents they uploaded
        editor.locator("#docbot-admin input").click()
        assert editor.get_by_role("option").all_inner_texts() == ["The Quokka Festival (quokka.md)"]
    finally:
        editor.context.close()

    admin = logged_in(chromium, login_server, ADMIN)
    try:
        assert "1 document" in admin.locator(".docbot-status").inner_text()
        open_documents(admin)
        admin.locator("#docbot-admin").wait_for()
        admin.locator("#docbot-admin input").click()
        admin.get_by_role("option", name=re.compile("The Quokka Festival")).click()
        admin.once("dialog", lambda dialog: dialog.accept())
        admin.locator("#docbot-remove").click()
        admin.locator("#docbot-remove-report", has_text="Removed The Quokka Festival").wait_for()
        admin.locator(".docbot-empty", has_text="The index is empty").wait_for()
        assert not (login_server.data_dir / "uploads" / "quokka.md").exists()
    finally:
        admin.context.close()
