"""Collections (fast tier, hashing embedder, a real local Chroma store): the registry, the default collection an
older index opens as, several collections fused as one ranking, and filters on the dense and the BM25 side."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from conftest import HASHING_COVERAGE

import index.collections as collections_module
from app import Library, build, build_library
from bot.config import Settings
from index.collections import DEFAULT, Collections, check_name
from index.errors import CollectionError, CollectionGoneError
from index.filters import FIELDS, Filter, FilterError, front_matter_tags
from index.hashing import HashingEmbedder
from index.retriever import HybridRetriever

HR_LEAVE = "---\ntitle: Leave\ntags: [policy, People]\n---\n# Leave\nEmployees get 25 days of annual leave a year.\n"
HR_SICK = "Sick leave needs a doctor's note after three days of absence.\n"
ENG_DEPLOY = "Deploy the billing service with the blue green pipeline; never deploy on Fridays.\n"
ENG_ONCALL = "The on-call engineer answers pages within fifteen minutes, day and night.\n"


class CountingEmbedder(HashingEmbedder):
    """The hashing embedder, counting the texts it embeds."""

    def __init__(self) -> None:
        super().__init__()
        self.texts = 0

    def encode(self, texts: list[str]) -> np.ndarray:
        self.texts += len(texts)
        return super().encode(texts)


def write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    return folder


FILES = {
    "hr/leave.md": HR_LEAVE,
    "hr/sick.txt": HR_SICK,
    "eng/runbooks/deploy.txt": ENG_DEPLOY,
    "eng/oncall.md": ENG_ONCALL,
}


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    return write(tmp_path / "docs", FILES)


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> HybridRetriever:
    """The four files indexed into the default collection, once for the module's filter cases."""
    folder = tmp_path_factory.mktemp("filters")
    services = build(Settings(data_dir=folder / "data", **HASHING_COVERAGE), embedder=HashingEmbedder())
    services.indexer.run([write(folder / "docs", FILES)])
    return services.retriever


@pytest.fixture
def library(tmp_path: Path) -> Library:
    return build_library(Settings(data_dir=tmp_path / "data", **HASHING_COVERAGE), embedder=HashingEmbedder())


def sources(passages: list) -> list[tuple[str, str]]:
    return [(p.collection, p.source) for p in passages]


# --- names and the registry --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["hr", "eng-runbooks", "a", "x_1", "a" * 40])
def test_good_names_pass(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "HR", "-hr", "hr-", "a" * 41, "hr/x", "h r", "../x", "hr.x", "é"])
def test_bad_names_get_one_clear_line(name: str) -> None:
    with pytest.raises(CollectionError, match="not a collection name: use 1 to 40 lowercase letters"):
        check_name(name)


def test_create_rename_delete(library: Library, docs: Path) -> None:
    collections = library.collections
    assert collections.names() == [DEFAULT]
    collections.create("hr")
    assert collections.names() == [DEFAULT, "hr"]
    with pytest.raises(CollectionError, match="exists already"):
        collections.create("hr")
    library.services("hr").indexer.run([docs / "hr"])
    info = collections.info("hr")
    assert (info.documents, info.passages) == (2, 2)
    assert info.size_bytes == len(library.services("hr").store.get(library.services("hr").store.ids())[0].text) + len(
        library.services("hr").store.get(library.services("hr").store.ids())[1].text
    )
    assert info.last_indexed is not None
    ids = sorted(library.services("hr").store.ids())

    collections.rename("hr", "people")
    library.forget("hr")
    assert collections.names() == [DEFAULT, "people"]
    assert sorted(library.services("people").store.ids()) == ids  # moved, not embedded again
    assert library.bot(["people"]).retriever.search("annual leave days").passages
    with pytest.raises(CollectionError, match="no collection 'hr'"):
        library.services("hr")
    with pytest.raises(CollectionError, match="default collection cannot be renamed"):
        collections.rename("people", DEFAULT)

    home = collections.home("people")
    assert (home / "bm25").is_dir()
    collections.delete("people")
    library.forget("people")
    assert collections.names() == [DEFAULT]
    assert not home.exists()
    collections.create("people")  # a new collection of that name starts empty
    assert collections.info("people").passages == 0


def test_a_servers_list_follows_its_own_changes_at_once_and_anothers_within_a_second(
    library: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``listed()`` (what every request reads) asks the store at most once per ``LISTED_MAX_AGE_S``."""
    monkeypatch.setattr(collections_module, "LISTED_MAX_AGE_S", 0.2)
    served = library.collections
    other = Collections(served.settings)  # another process, say `docbot collections create`, on the same store
    assert served.listed() == [DEFAULT]
    other.create("hr")
    assert served.listed() == [DEFAULT]  # not asked again yet
    time.sleep(0.25)
    assert served.listed() == [DEFAULT, "hr"]
    served.create("eng")
    assert served.listed() == [DEFAULT, "eng", "hr"]  # its own change: at once
    other.delete("eng")
    time.sleep(0.25)
    assert served.listed() == [DEFAULT, "hr"]


def test_a_collection_renamed_and_made_anew_by_the_cli_is_opened_again_not_served_from_the_old_handle(
    library: Library, docs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue #27, finding 2: a server's library resolves a name to the collection it names now. Renamed away (by
    ``docbot collections``, another process in production), the name's new, empty collection answers nothing of
    the old one's documents; once the old one is deleted too, nothing of it is opened or searched (a search already
    holding it says the collection went away)."""
    from typer.testing import CliRunner

    from bot.cli import app as cli

    monkeypatch.setattr(collections_module, "LISTED_MAX_AGE_S", 0.0)  # what a server sees within a second
    library.services("fin", create=True).indexer.run([docs / "hr"])
    assert library.bot(["fin"]).retriever.search("annual leave days").passages
    old_id = library.services("fin").store.collection_id

    def docbot(*args: str) -> None:
        ran = CliRunner().invoke(cli, ["collections", *args], env={"DOCBOT_DATA_DIR": str(library.settings.data_dir)})
        assert ran.exit_code == 0, ran.output

    docbot("rename", "fin", "fin-old")
    docbot("create", "fin")
    assert library.bot(["fin"]).retriever.search("annual leave days").passages == []
    assert library.services("fin").store.collection_id != old_id
    in_flight = library.bot(["fin-old"]).retriever  # the old one, under its new name
    assert in_flight.search("annual leave days").passages
    docbot("delete", "fin-old", "--yes")
    with pytest.raises(CollectionGoneError, match="renamed or deleted"):  # a 404 saying so, not a 503 naming its id
        in_flight.search("annual leave days")
    assert library.bot(["fin"]).retriever.search("annual leave days").passages == []  # no 503: no deleted handle
    with pytest.raises(CollectionError, match="no collection 'fin-old'"):
        library.bot(["fin-old"])
    docbot("delete", "fin", "--yes")
    with pytest.raises(CollectionError, match="no collection 'fin'"):
        library.services("fin")


def test_an_index_run_creates_its_collection_and_asking_a_missing_one_is_an_error(library: Library, docs: Path) -> None:
    library.services("eng", create=True).indexer.run([docs / "eng"])
    assert library.collections.names() == [DEFAULT, "eng"]
    with pytest.raises(CollectionError, match="create it with: docbot collections create nope"):
        library.bot(["nope"])


def test_a_new_collection_takes_the_model_of_the_existing_ones(tmp_path: Path, docs: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    with pytest.raises(CollectionError, match="run docbot index --collection NAME PATH"):
        Collections(settings).create("hr")
    build(settings, embedder=HashingEmbedder()).indexer.run([docs])
    Collections(settings).create("hr")  # no model given: the default collection's is used
    assert Collections(settings).names() == [DEFAULT, "hr"]


# --- the index of before collections -----------------------------------------------------------


def test_an_index_built_before_collections_opens_as_default_without_embedding_again(tmp_path: Path, docs: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", **HASHING_COVERAGE)
    old = build(settings, embedder=HashingEmbedder())
    old.indexer.run([docs])
    # What the code before collections and filters stored: the same chunks without the filter fields (an update
    # merges metadata: None removes a key).
    stored = {i: m for i, _, m in old.store.iter_all(with_text=False)}
    old.store.set_metadata({i: dict.fromkeys(FIELDS) for i in stored})
    assert all("type" not in m for _, _, m in old.store.iter_all(with_text=False))

    embedder = CountingEmbedder()
    library = build_library(settings, embedder=embedder)
    assert library.collections.names() == [DEFAULT]
    assert sorted(library.services(DEFAULT).store.ids()) == sorted(stored)
    retriever = library.bot([DEFAULT]).retriever
    assert embedder.texts == 0  # the BM25 files were found where they were
    # Before a re-index the BM25 side derives type and folder from the source path.
    assert {p.source for p in retriever.search("deploy", where=Filter.parse("type=txt")).passages} <= {
        "hr/sick.txt",
        "eng/runbooks/deploy.txt",
    }
    embedder.texts = 0
    report = library.services(DEFAULT).indexer.run([docs])
    assert report.unchanged and not report.changed and embedder.texts == 0
    metadata = [m for _, _, m in library.services(DEFAULT).store.iter_all(with_text=False)]
    assert all(m["type"] in ("md", "txt") and m["modified"] > 0 for m in metadata)
    assert sorted(library.services(DEFAULT).store.ids()) == sorted(stored)


# --- several collections as one ranking --------------------------------------------------------


def test_several_collections_are_searched_as_one_ranking(library: Library, docs: Path) -> None:
    library.services("hr", create=True).indexer.run([docs / "hr"])
    library.services("eng", create=True).indexer.run([docs / "eng"])
    both = library.bot(["hr", "eng"]).retriever
    leave = both.search("how many days of annual leave do employees get", 3)
    assert leave.covered and sources(leave.passages)[0] == ("hr", "leave.md")
    deploy = both.search("deploy the billing service blue green pipeline", 3)
    assert deploy.covered and sources(deploy.passages)[0] == ("eng", "runbooks/deploy.txt")
    # one collection alone never returns the other's passages
    assert {c for c, _ in sources(library.bot(["eng"]).retriever.search("annual leave days").passages)} <= {"eng"}


def test_a_collection_that_does_not_cover_the_question_adds_nothing(library: Library, docs: Path) -> None:
    library.services("hr", create=True).indexer.run([docs / "hr"])
    library.services("eng", create=True).indexer.run([docs / "eng"])
    both = library.bot(["hr", "eng"]).retriever
    found = both.search("sick leave doctor note absence days", 5)
    covering = {name for name, r in both.retrievers.items() if r.search("sick leave doctor note absence days").covered}
    assert found.covered and {c for c, _ in sources(found.passages)} == covering
    off_topic = both.search("quantum chromodynamics of gluon plasma", 5)
    assert not off_topic.covered and off_topic.passages == []


def test_the_same_file_in_two_collections_is_two_passages(library: Library, docs: Path) -> None:
    for name in ("hr", "people"):
        library.services(name, create=True).indexer.run([docs / "hr"])
    found = library.bot(["hr", "people"]).retriever.search("annual leave days employees", 4)
    assert ("hr", "leave.md") in sources(found.passages) and ("people", "leave.md") in sources(found.passages)


# --- filters -----------------------------------------------------------------------------------


def test_front_matter_folder_and_given_tags_are_stored(library: Library, docs: Path) -> None:
    services = library.services(DEFAULT)
    services.indexer.run([docs], tags=["Handbook"])
    meta = {m["source"]: m for _, _, m in services.store.iter_all(with_text=False)}
    assert meta["hr/leave.md"]["tags"] == ["policy", "people", "handbook", "hr"]
    assert meta["eng/runbooks/deploy.txt"]["folders"] == ["eng/", "eng/runbooks/"]
    assert meta["eng/runbooks/deploy.txt"]["tags"] == ["handbook", "runbooks"]
    assert meta["hr/sick.txt"]["type"] == "txt"


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("type=md", {"hr/leave.md", "eng/oncall.md"}),
        ("tag=people", {"hr/leave.md"}),
        ("tag=hr,type=txt", {"hr/sick.txt"}),
        ("path=eng/", {"eng/runbooks/deploy.txt", "eng/oncall.md"}),
        ("path=eng/runbooks", {"eng/runbooks/deploy.txt"}),
        ("path=hr/sick.txt", {"hr/sick.txt"}),
        ('{"type": ["txt", "md"], "path": "hr"}', {"hr/leave.md", "hr/sick.txt"}),
        ("after=2000-01-01", {"hr/leave.md", "hr/sick.txt", "eng/runbooks/deploy.txt", "eng/oncall.md"}),
        ("before=2000-01-01", set()),
    ],
)
def test_a_filter_holds_on_the_dense_and_the_bm25_side_alike(
    indexed: HybridRetriever, where: str, expected: set[str]
) -> None:
    retriever = indexed
    query = "leave days deploy service pages engineer doctor"
    for side in ({"lexical": False}, {"dense": False}, {}):
        found = {p.source for p in retriever.search(query, 10, where=Filter.parse(where), **side).passages}
        assert found <= expected, (side, found)
    # the dense side alone reaches every chunk the filter keeps (the corpus is smaller than fetch_k)
    assert {
        p.source for p in retriever.search(query, 10, where=Filter.parse(where), lexical=False).passages
    } == expected


def test_bm25_is_masked_before_its_top_k(tmp_path: Path) -> None:
    """Ten passages that match the query better, outside the filter, do not push out the one inside it."""
    files = {f"loud/{n}.txt": f"vacation vacation vacation policy number {n}.\n" for n in range(10)}
    files["quiet/one.txt"] = "A vacation request goes to the manager.\n"
    services = build(Settings(data_dir=tmp_path / "data", fetch_k=3), embedder=HashingEmbedder())
    services.indexer.run([write(tmp_path / "many", files)])
    retriever = services.retriever
    assert "quiet/one.txt" not in {p.source for p in retriever.search("vacation", 3, dense=False).passages}
    found = retriever.search("vacation", 3, dense=False, where=Filter.parse("path=quiet"))
    assert [p.source for p in found.passages] == ["quiet/one.txt"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("type", "is not key=value"),
        ("colour=red", "unknown filter key colour"),
        ("after=yesterday", "a date like 2025-01-31"),
        ("{not json", "not valid JSON"),
        ('{"tag": 5}', "a non-empty text"),
        ("after=2025-01-01,after=2025-02-01", "after may be given once"),
        ("path=/", "path: a folder like policies/"),
        (",".join(f"tag=t{n}" for n in range(21)), "at most 20 values"),
    ],
)
def test_bad_filters_say_what_a_filter_is(text: str, message: str) -> None:
    with pytest.raises(FilterError, match=message):
        Filter.parse(text)


def test_front_matter_tags_forms() -> None:
    assert front_matter_tags("---\ntags: a, B\n---\ntext") == ["a", "b"]
    assert front_matter_tags("---\ntags:\n  - x\n  - y z\n---\n") == ["x"]
    assert front_matter_tags("---\ntags: [unclosed\n---\n") == []
    assert front_matter_tags("no front matter\ntags: a") == []


@pytest.mark.server
def test_collections_on_a_chroma_server(tmp_path: Path, docs: Path) -> None:
    """The same registry over HTTP: a second docbot data folder sees the collections the first one made."""
    import live

    with live.chroma_server(tmp_path) as server:
        first = build_library(
            Settings(data_dir=tmp_path / "a", chroma_url=server.url, **HASHING_COVERAGE), embedder=HashingEmbedder()
        )
        first.services("hr", create=True).indexer.run([docs / "hr"])
        first.collections.create("eng")
        first.collections.rename("eng", "ops")
        assert first.collections.names() == [DEFAULT, "hr", "ops"]
        assert not (tmp_path / "a" / "chroma").exists()
        other = Collections(Settings(data_dir=tmp_path / "b", chroma_url=server.url))
        assert other.names() == [DEFAULT, "hr", "ops"] and other.info("hr").passages == 2
        assert first.bot(["hr"]).retriever.search("annual leave days").passages[0].source == "leave.md"
        first.collections.delete("ops")
        assert other.names() == [DEFAULT, "hr"]


def test_sentence_vectors_go_with_their_collection_and_are_never_listed(
    tmp_path: Path, hashing_embedder: HashingEmbedder
) -> None:
    """Each collection's sentence vectors live in a Chroma collection of their own that is never listed as a
    collection, is renamed with it and deleted with it."""
    from index.store import chroma_client, sentences_of

    settings = Settings(data_dir=tmp_path / "data")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Harbour cranes unload ships at night. The tide sets the schedule.", encoding="utf-8")
    collections = Collections(settings)
    services = build(collections.settings_for("hr"), embedder=hashing_embedder)
    services.indexer.run([docs])
    assert collections.names() == ["default", "hr"]
    collections.rename("hr", "people")
    chroma = {c if isinstance(c, str) else c.name for c in chroma_client(settings).list_collections()}
    assert sentences_of(collections.chroma_name("people")) in chroma
    assert sentences_of(collections.chroma_name("hr")) not in chroma
    collections.delete("people")
    chroma = {c if isinstance(c, str) else c.name for c in chroma_client(settings).list_collections()}
    assert not any(name.startswith(collections.chroma_name("people")) for name in chroma)
    assert collections.names() == ["default"]


def test_one_request_at_a_time_asks_the_store_for_the_list(library: Library, monkeypatch: pytest.MonkeyPatch) -> None:
    """When the list expires under load, one request asks the store; the others read the list it replaces."""
    monkeypatch.setattr(collections_module, "LISTED_MAX_AGE_S", 0.2)
    served = library.collections
    asked: list[int] = []
    release = threading.Event()
    real = served._chroma_ids

    def slow_ids() -> dict[str, str]:
        asked.append(1)
        release.wait(5)  # the store is slow: every other request arrives while this one lists
        return real()

    assert served.listed() == [DEFAULT]
    Collections(served.settings).create("hr")  # another process's change, not yet seen
    time.sleep(0.25)
    monkeypatch.setattr(served, "_chroma_ids", slow_ids)
    with ThreadPoolExecutor(8) as pool:
        first = pool.submit(served.listed)
        while not asked:
            time.sleep(0.01)
        others = [pool.submit(served.listed) for _ in range(7)]
        assert [f.result(5) for f in others] == [[DEFAULT]] * 7  # the old list, at once, without asking the store
        release.set()
        assert first.result(5) == [DEFAULT, "hr"]
    assert len(asked) == 1
    assert served.listed() == [DEFAULT, "hr"]


def test_a_change_made_while_listing_is_not_hidden_by_the_older_list(
    library: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A listing that began before this object's own change is returned but not kept: the next read asks again."""
    served = library.collections
    real = served._chroma_ids
    before = real()  # the store's collections before the change
    changed: list[str] = []

    def ids_then_change() -> dict[str, str]:
        if not changed:
            changed.append("eng")
            served.create("eng")  # lands while the store is being read (its own check reads the old names too)
        return dict(before)

    monkeypatch.setattr(served, "_chroma_ids", ids_then_change)
    assert served.listed() == [DEFAULT]  # what the store said when asked
    monkeypatch.setattr(served, "_chroma_ids", real)
    assert served.listed() == [DEFAULT, "eng"]  # not the older list kept for a second
