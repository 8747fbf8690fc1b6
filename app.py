"""Composition root: ``build(settings) -> Services`` wires the parts once; ``create_app(services)`` is the web app.

Every entry point goes through :func:`build`: the CLI (each command), ``docbot serve``, the evaluator and the
benchmarks. ``python app.py`` is ``docbot serve``: it serves on the configured host and port (default http://127.0.0.1:7860).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, cast

from bot.config import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from bot.access.policy import Access
    from bot.answer.chat import Bot
    from bot.answer.llm import ModelBackend
    from bot.documents.upload_inbox import UploadInbox
    from bot.state.conversations import ConversationStore
    from bot.state.counters import WindowCounters
    from bot.state.database import Database
    from bot.state.feedback import FeedbackStore
    from bot.state.grants import GrantStore
    from bot.state.stores import RateBucket
    from bot.state.uploads import UploadStore
    from index.pipeline import Indexer
    from index.protocols import Embedder
    from index.retriever import HybridRetriever
    from index.store import VectorStore

log = logging.getLogger(__name__)
T = TypeVar("T")


class State:
    """The state database (``bot.state``) and its stores (a :class:`bot.state.stores.Stores`) of one docbot process:
    each built once, on first use (indexing and eval never open the database; ``docbot access`` opens only the
    grants' tables). Thread-safe.

    Every store and rate-limit counter of the process is one of these: the web layer, the page and the CLI's
    admin commands are handed them, and construct none.
    """

    def __init__(self, settings: Settings, database: Database | None = None) -> None:
        """``database``: the state database when the caller opened it already."""
        self.settings = settings
        self._made: dict[str, object] = {} if database is None else {"database": database}
        self._lock = threading.RLock()

    def _once(self, name: str, make: Callable[[], T]) -> T:
        with self._lock:
            if name not in self._made:
                self._made[name] = make()
            return cast(T, self._made[name])

    @property
    def database(self) -> Database:
        """The state database (DOCBOT_DATABASE_URL, else SQLite in the data directory)."""
        return self._once("database", lambda: open_database(self.settings))

    @property
    def conversations(self) -> ConversationStore:
        from bot.state.conversations import ConversationStore

        return self._once("conversations", lambda: ConversationStore(self.database))

    @property
    def feedback(self) -> FeedbackStore:
        from bot.state.feedback import FeedbackStore

        return self._once("feedback", lambda: FeedbackStore(self.database))

    @property
    def uploads(self) -> UploadStore:
        from bot.state.uploads import UploadStore

        return self._once("uploads", lambda: UploadStore(self.database))

    @property
    def grants(self) -> GrantStore:
        """Grants per collection and scoped keys, read through a cache of ``grants_cache_s``."""
        from bot.state.grants import GrantStore

        return self._once("grants", lambda: GrantStore(self.database, self.settings.grants_cache_s))

    def counters(self, bucket: RateBucket) -> WindowCounters:
        """The rate-limit window counters of ``bucket``: requests a minute to the API (``api``), the page
        (``page``) and the evidence viewer (``view``); failed sign-ins (``auth``, DOCBOT_AUTH_FAILURE_WINDOW_S)."""
        from bot.state.counters import WindowCounters

        window_s = self.settings.auth_failure_window_s if bucket == "auth" else 60.0
        return self._once(f"counters.{bucket}", lambda: WindowCounters(self.database, bucket, window_s))


class Pools:
    """The worker processes of one docbot process: the parsers' (:class:`index.parse_pool.ParsePool`, for index
    runs and the viewer's texts) and the PDF viewer's (:class:`bot.view.pdf.ViewerPool`). Workers start on first
    use; :meth:`close` (or the process's exit) kills the idle ones."""

    def __init__(self) -> None:
        from bot.view.pdf import ViewerPool
        from index.parse_pool import ParsePool

        self.parse = ParsePool()
        self.view = ViewerPool()

    def close(self) -> None:
        self.parse.close()
        self.view.close()


def open_pools() -> Pools:
    """A process's worker pools (:func:`build` calls this once, unless it is given them)."""
    return Pools()


@dataclass(frozen=True)
class Services:
    """One docbot's parts, built by :func:`build`.

    ``retriever`` and ``bot`` open on first use: an index run needs neither the BM25 load nor the model backend
    they bring, and a retriever opened after the run sees what it wrote. ``state`` and ``pools`` are the process's:
    every collection's Services of a :class:`Library` share them.
    """

    settings: Settings
    embedder: Embedder
    store: VectorStore
    indexer: Indexer
    state: State
    pools: Pools

    @cached_property
    def retriever(self) -> HybridRetriever:
        from index.retriever import HybridRetriever

        return HybridRetriever(settings=self.settings, embedder=self.embedder, store=self.store)

    @property
    def database(self) -> Database:
        """The state database (``bot.state``), opened on first use: indexing and eval never need it."""
        return self.state.database

    @cached_property
    def bot(self) -> Bot:
        from bot.answer.chat import Bot
        from bot.answer.llm import build_backend

        return Bot(self.settings, self.retriever, build_backend(self.settings))


def open_database(settings: Settings) -> Database:
    """The state database ``settings`` name (DOCBOT_DATABASE_URL, else SQLite in the data directory)."""
    from bot.state.database import Database

    return Database.for_settings(settings)


def admin_state(settings: Settings) -> State:
    """The state the CLI's admin commands (``docbot access``, ``feedback``, ``purge``, ``collections``) work on:
    grants read uncached, since a command reads back what it has just written."""
    return State(settings.model_copy(update={"grants_cache_s": 0}))


def build(
    settings: Settings,
    *,
    embedder: Embedder | None = None,
    rebuild: bool = False,
    state: State | None = None,
    pools: Pools | None = None,
) -> Services:
    """Load the embedding model (unless ``embedder`` is given: any ``index.protocols.Embedder``, e.g. the
    hashing one of the fast test tier), open the store (checking the model matches).

    ``rebuild`` drops the store's collection first (``docbot index --rebuild``); ``state`` and ``pools``: the
    process's, when the caller has them already (a :class:`Library` opening another collection, ``docbot serve``
    which checked access first); else they are made here, once for the process.
    """
    from index.embeddings import embedder_from_settings
    from index.pipeline import Indexer
    from index.store import VectorStore

    embedder = embedder or embedder_from_settings(settings)
    store = VectorStore(settings, embedder.name, embedder.dimension, rebuild=rebuild)
    pools = pools or open_pools()
    indexer = Indexer(settings, embedder, store, pools.parse)
    return Services(settings, embedder, store, indexer, state or State(settings), pools)


class Library:
    """Every collection of one docbot over one embedder: each collection's :class:`Services` (opened on first use and
    kept), and a bot over one or several collections (several are searched as one ranking, index.fusion).

    A name is resolved to the collection it names now, not to the one it named when opened: each use checks the open
    collection's Chroma id against the list every request reads (index.collections, at most a second old). A
    collection renamed, deleted or made anew by the CLI or another replica is dropped with every bot searching it
    and opened again (or is no collection any more), so a handle to a deleted collection is never used again.
    """

    def __init__(self, first: Services) -> None:
        """``first``: the Services of the docbot's own settings (its default collection); every collection opened
        later shares its embedder, state and worker pools."""
        from index.collections import DEFAULT, Collections

        self.settings = first.settings
        self.embedder = first.embedder
        self.state = first.state
        self.pools = first.pools
        self.collections = Collections(self.settings, model=(self.embedder.name, self.embedder.dimension))
        self._services: dict[str, Services] = {DEFAULT: first}
        self._bots: dict[tuple[str, ...], Bot] = {}
        self._lock = threading.RLock()

    def services(self, name: str, *, create: bool = False) -> Services:
        """The collection's parts; ``create`` makes a collection that does not exist yet (an index run)."""
        from index.collections import check_name

        check_name(name)
        with self._lock:
            opened = self._services.get(name)
            if opened is not None and not self._names_now(name, opened):
                log.info("collection %s was renamed, deleted or made anew elsewhere: opening it again", name)
                self.forget(name)
                opened = None
            if opened is None:
                if not create:
                    self.collections.require(name)
                opened = self._services[name] = build(
                    collection_settings(self.settings, name), embedder=self.embedder, state=self.state, pools=self.pools
                )
                self.collections.changed()  # opening made it, if it did not exist yet (default, an index run)
            return opened

    def _names_now(self, name: str, opened: Services) -> bool:
        """Whether ``name`` still names the collection ``opened`` has open. A store that cannot be asked keeps it:
        what then uses it says the store is down."""
        from index.errors import StoreUnavailableError

        try:
            return self.collections.identity(name) == opened.store.collection_id
        except StoreUnavailableError:
            return True

    def forget(self, name: str) -> None:
        """Drop what is open of a collection and every bot searching it (it was renamed or deleted)."""
        with self._lock:
            self._services.pop(name, None)
            self._bots = {key: bot for key, bot in self._bots.items() if name not in key}

    @cached_property
    def backend(self) -> ModelBackend | None:
        from bot.answer.llm import build_backend

        return build_backend(self.settings)

    def bot(self, names: Sequence[str]) -> Bot:
        """The bot answering from these collections (in this order; duplicates once)."""
        from bot.answer.chat import Bot
        from index.fusion import FusedRetriever

        key = tuple(dict.fromkeys(names))
        if not key:
            raise ValueError("a bot needs at least one collection")
        with self._lock:
            retrievers = {name: self.services(name).retriever for name in key}  # each the one its name opens now
            if key not in self._bots:
                self._bots[key] = Bot(self.settings, FusedRetriever(retrievers, self.settings.rrf_k), self.backend)
            return self._bots[key]


def collection_settings(settings: Settings, name: str) -> Settings:
    """``settings`` pointed at collection ``name`` (its Chroma collection, its folder)."""
    from index.collections import Collections

    return cast(Settings, Collections(settings).settings_for(name))  # a copy of a Settings is a Settings


def build_library(settings: Settings, *, embedder: Embedder | None = None, first: Services | None = None) -> Library:
    """The library of ``settings``' docbot: the model is loaded once (unless ``embedder`` is given); ``first``: its
    Services, when they are built already (``create_app``)."""
    return Library(first or build(settings, embedder=embedder))


def create_app(services: Services, access: Access | None = None) -> FastAPI:
    """The whole web app over ``services``: REST/SSE API, OpenAI-compatible API, embed, evidence viewer, Gradio page.

    ``access`` (who may do what) defaults to the one ``services.settings`` describe; its grants per collection are
    read from the state database (``services.state``) unless it brings a grant store of its own."""
    import gradio as gr
    from fastapi import FastAPI

    from bot.access.policy import Access
    from bot.web.access_gate import connect_page_login, install_gate, page_is_open
    from bot.web.api import install_api
    from bot.web.edge import AnswerSlots, install_edge
    from bot.web.page import build_ui, page_assets
    from bot.web.signin import install_signin
    from bot.web.upload_route import InboxMiddleware
    from bot.web.viewer import install_viewer

    settings = services.settings
    state = services.state
    access = access or Access.from_settings(settings, state)
    inbox = upload_inbox(settings)
    slots = AnswerSlots(settings.max_concurrent_answers)
    app = FastAPI(
        title="docbot", version="0.1.0", description="Answers questions about your documents, with cited passages."
    )
    import_feedback_file(settings, state)
    import_upload_records(settings, state)
    library = build_library(settings, first=services)
    install_api(app, library, settings, access, slots, state)
    install_viewer(app, library, settings, access, state, services.pools.view, services.pools.parse)
    install_gate(app, access)
    if page_is_open(access):  # Gradio shows no login form
        install_signin(app)
    app.add_middleware(InboxMiddleware, inbox=inbox, access=access, body_timeout_s=settings.upload_body_timeout_s)
    app.state.upload_inbox = inbox
    app.state.library = library
    first = library.services(settings.default_collection)
    bot = library.bot([settings.default_collection])
    blocks = build_ui(bot, first.settings, first.indexer, inbox, access, slots, state, library)
    gr.mount_gradio_app(
        app,
        blocks,
        path="/",
        auth=access.password_check if access.login_configured else None,
        max_file_size=settings.max_upload_bytes,
        server_name=settings.host,
        server_port=settings.port,
        footer_links=[],
        ssr_mode=False,
        show_error=False,  # an exception's text (a server path, say) stays in the server log
        **page_assets(),
    )
    # Gradio checks that an event's input files are in its upload folder only once the Blocks "has launched",
    # which mount_gradio_app never marks (only launch() does): mark it, so that check guards every event with
    # files. The page's upload event also checks each path itself, more strictly (bot.documents.upload_inbox:
    # received by this server from the same session, no symlink, a regular file).
    blocks.has_launched = True
    connect_page_login(app, access)
    install_edge(app, settings, state, access)  # last, so that it runs first: before the API, the embed and the page
    return app


def import_feedback_file(settings: Settings, state: State) -> None:
    """Votes an earlier docbot appended to ``feedback.jsonl`` go into the database, once (the file stays)."""
    imported = state.feedback.import_file(settings.feedback_file)
    if imported is not None:
        log.info("imported %d votes from %s into the state database", imported, settings.feedback_file)


def import_upload_records(settings: Settings, state: State) -> None:
    """Who uploaded what, as an earlier docbot kept it in each collection's ``documents.json``, goes into the
    database with the uploaded files, once (the files stay)."""
    from bot.documents.upload_records import import_legacy_records
    from index.collections import DEFAULT, FOLDER, check_name
    from index.errors import CollectionError

    uploads = state.uploads
    for name in [DEFAULT, *sorted(p.name for p in (settings.data_dir / FOLDER).glob("*") if p.is_dir())]:
        try:
            check_name(name)
        except CollectionError:  # not a collection's folder
            continue
        collection = collection_settings(settings, name)
        imported = import_legacy_records(collection, uploads)
        if imported is not None:
            log.info("imported %d uploads of collection %s into the state database", imported, name)


def upload_inbox(settings: Settings) -> UploadInbox:
    """Gradio's upload cache, in the data directory unless the operator chose a place (GRADIO_TEMP_DIR).

    docbot's own cache folder is emptied at start (copies left by an earlier run can never be added); a folder the
    operator chose is left as it is, since other programs may use it (only the uploads docbot recorded there expire).
    """
    from bot.documents.upload_inbox import UploadInbox

    own = (settings.data_dir / "gradio").resolve()
    folder = Path(os.environ.setdefault("GRADIO_TEMP_DIR", str(own))).resolve()
    limits = (settings.upload_cache_bytes, settings.upload_quota_bytes, settings.upload_cache_ttl_s)
    inbox = UploadInbox(folder, *limits, owned=folder == own)
    if inbox.owned:
        inbox.clear()
    else:
        log.info("GRADIO_TEMP_DIR is %s: stale uploads there are not cleared at start", folder)
    return inbox


def serve(settings: Settings) -> None:
    import uvicorn
    from gradio.utils import MatplotlibBackendMananger

    from bot.access.policy import Access
    from bot.documents.originals import Originals
    from bot.documents.upload_sweep import start_sweeping
    from bot.view.pdf import view_budget, warm_up
    from bot.web.page_session_owner import SessionHashes

    state = State(settings, open_database(settings))
    access = Access.from_settings(settings, state)  # a settings problem stops here, before the model loads
    # Forwarded headers are bot.web.edge's to judge (DOCBOT_TRUSTED_PROXIES): uvicorn's own handling would believe
    # them from 127.0.0.1, so any local caller, or a proxy on the same machine passing a client's header through.
    services = build(settings, state=state)
    app = create_app(services, access)
    uploads = state.uploads
    start_sweeping(app.state.library, uploads, Originals(uploads, settings.data_dir), settings, app.state.upload_inbox)
    # a PDF viewer worker starts meanwhile: the first page view does not wait for it
    warm_up(services.pools.view, view_budget(settings))
    wait_for_local_model(app.state.library)
    # Gradio enters this around every event, on the event loop; the first time it imports matplotlib (about 0.8 s
    # in which no request, not even /api/health, is answered): done here, before the first page event
    with MatplotlibBackendMananger():
        pass
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level="info", proxy_headers=False)
    logging.getLogger("uvicorn.access").addFilter(SessionHashes())  # after the Config set uvicorn's logging up
    uvicorn.Server(config).run()


def wait_for_local_model(library: Library) -> None:
    """With the local generator, ready means its process answered one token; a model that cannot start leaves the
    server answering extractively (with a notice) while it is started again."""
    backend = library.backend
    if backend is None or backend.local is None:
        return
    print(f"docbot: starting the local model {backend.name} in a process of its own...", file=sys.stderr, flush=True)
    if backend.local.wait_ready(backend.local.ready_timeout_s + 5):
        print("docbot: the local model is up", file=sys.stderr, flush=True)
        return
    status = backend.local.status()
    print(
        f"docbot: the local model did not start ({status.last_exit or status.state}); answers are extractive until "
        f"it does, and docbot keeps trying. Its log: {backend.local.log_path}",
        file=sys.stderr,
        flush=True,
    )


if __name__ == "__main__":  # the same as `docbot serve`, bad settings and an unreachable store included
    from bot.cli import app as cli

    cli(["serve"])
