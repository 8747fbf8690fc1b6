"""Helpers several test modules share (fixtures are in conftest.py; small indexes and fake models in
answer_fixtures.py; PDFs are built by bench/pdfs.py)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from app import Pools, Services
    from bot.access.policy import Access
    from bot.config import Settings
    from bot.state.database import Database

#: Where ``docbot serve`` answers by default: the address the in-process app is asked at.
BASE_URL = "http://127.0.0.1:7860"

#: Three one-sentence documents on unrelated subjects, for tests of the models that rank them.
FERRY = "The morning ferry leaves the north pier at seven and returns from the island at noon.\n"
BEES = "A honeybee queen can lay up to two thousand eggs a day in early summer.\n"
LEAVE = "Employees get twenty-five days of annual leave a year, booked with their manager.\n"


def three_subjects(folder: Path) -> Path:
    """``folder`` holding the ferry, bees and leave documents, one file each."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in {"ferry.txt": FERRY, "bees.txt": BEES, "leave.txt": LEAVE}.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


class Clock:
    """A clock a test sets by hand (``clock.now = ...``), for the parts that take a ``clock`` callable."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def pools() -> Pools:
    """The worker pools ``app.build`` hands out: the test process's one set (conftest.py's ``_one_set_of_pools``)."""
    from app import open_pools

    return open_pools()


def access_over(settings: Settings, database: Database) -> Access:
    """The access policy ``settings`` describe, its grants and failed sign-ins in ``database``."""
    from app import State
    from bot.access.policy import Access

    return Access.from_settings(settings, State(settings, database))


def indexed(services: Services, *paths: Path) -> Services:
    """``services`` after an index run over ``paths`` that failed on nothing."""
    report = services.indexer.run(list(paths))
    assert not report.failed, report.summary()
    return services


def app_client(app: Services | FastAPI, key: str | None = None, **options: Any) -> TestClient:
    """A TestClient of the whole app in-process (``create_app`` over ``app`` when it is a Services) at
    :data:`BASE_URL`, sending ``key`` as a bearer token if given; ``options`` go to the TestClient. Enter it
    (``with``) to run the app's start and stop."""
    from fastapi.testclient import TestClient

    from app import Services, create_app

    options = {"base_url": BASE_URL, **options}
    if key is not None:
        options["headers"] = {"Authorization": f"Bearer {key}", **options.get("headers", {})}
    client = TestClient(create_app(app) if isinstance(app, Services) else app, **options)
    client.timeout = 120
    return client


#: A box as (left, top, right, bottom) fractions of the page, origin top-left (as ``bot.view.pdf.Box``).
Rect = tuple[float, float, float, float]


def pdfium_boxes(path: Path, page: int, sentence: str) -> tuple[list[Rect], list[Rect]]:
    """pdfium's tight boxes (page fractions) of ``sentence``'s characters on the page, and of every other inked
    character there, read straight from pypdfium2 without docbot's viewer code (unrotated pages with the origin at
    0, 0, as reportlab writes)."""
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(path)
    try:
        pdf_page = document[page - 1]
        width, height = pdf_page.get_size()
        textpage = pdf_page.get_textpage()
        inked = [i for i in range(textpage.count_chars()) if textpage.get_text_range(i, 1).strip()]
        flat = "".join(textpage.get_text_range(i, 1) for i in inked)
        wanted = "".join(sentence.split())
        assert flat.count(wanted) == 1, sentence
        at = flat.index(wanted)
        mine = set(inked[at : at + len(wanted)])

        def rect(index: int) -> Rect:
            left, bottom, right, top = textpage.get_charbox(index)
            return left / width, 1 - top / height, right / width, 1 - bottom / height

        return [rect(i) for i in inked if i in mine], [rect(i) for i in inked if i not in mine]
    finally:
        document.close()
