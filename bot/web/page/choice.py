"""The page's first job: what each event works on. The collections and filter chips a page session picked (the
collection picker, the filter chips), who the caller is (from the request, never from what the page says) and what
they may do there.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import gradio as gr

from bot.access.policy import POLICY, Access, BadCredentialsError, Identity, allowed, readable_collections
from bot.answer.chat import Bot
from bot.config import Settings
from bot.state.grants import Right
from bot.view.render import notice_html
from index.errors import StoreUnavailableError
from index.filters import Filter, FilterError
from index.pipeline import Indexer
from index.protocols import Store

if TYPE_CHECKING:
    from bot.documents.library import Library

#: Page sessions whose picked collections and filter chips are kept (the oldest are forgotten first).
MAX_SESSIONS = 10_000

NOTHING_READABLE = "There is nothing here you may read: an administrator can grant you a collection."


@dataclass(frozen=True)
class Scope:
    """What one page event works on: the picked collections' bot, and the first one's documents (listed, added to,
    removed from) with its settings (where its uploads and their records live)."""

    names: list[str]
    bot: Bot
    store: Store
    settings: Settings
    indexer: Indexer
    where: Filter | None = None
    stores: dict[str, Store] = field(default_factory=dict)  # each picked collection's store


@dataclass(frozen=True)
class Choice:
    """What a page session picked: collections and filter chips."""

    names: tuple[str, ...] = ()
    chips: tuple[str, ...] = ()


class ChoiceEvents:
    """The picker's and the filter chips' events, and what every other event asks first: its scope, its caller and
    what they may do. State set by :class:`bot.web.page.layout.ChatPage`."""

    bot: Bot
    settings: Settings
    indexer: Indexer
    access: Access
    library: Library | None
    _choices: OrderedDict[str, Choice]
    _choices_lock: threading.Lock

    @property
    def store(self) -> Store:
        return self.bot.retriever.store

    def readable(self, identity: Identity | None) -> list[str]:
        if self.library is None:
            return [self.settings.default_collection]
        try:
            names = self.library.collections.listed()
        except StoreUnavailableError:  # the store is down: the default collection's answer will say so
            names = [self.settings.default_collection]
        return readable_collections(identity, names)

    def _choice(self, request: gr.Request) -> Choice:
        with self._choices_lock:
            return self._choices.get(request.session_hash or "", Choice())

    def _remember(self, request: gr.Request, choice: Choice) -> None:
        with self._choices_lock:
            self._choices[request.session_hash or ""] = choice
            self._choices.move_to_end(request.session_hash or "")
            while len(self._choices) > MAX_SESSIONS:
                self._choices.popitem(last=False)

    def pick(self, names: list[str] | str | None, request: gr.Request) -> None:
        """The picker changed: remember the collections (only readable ones count, checked again at each use)."""
        picked = [names] if isinstance(names, str) else list(names or [])
        self._remember(request, Choice(tuple(picked), self._choice(request).chips))

    def filter_chips(self, values: list[str] | None, request: gr.Request) -> str:
        """The filter chips changed: remember them; a chip that is not a filter is reported (and ignored)."""
        chips_given = tuple(str(v) for v in values or [])
        self._remember(request, Choice(self._choice(request).names, chips_given))
        try:
            self._filter(chips_given)
        except FilterError as exc:
            return notice_html(f"That filter is ignored: {exc}.")
        return ""

    @staticmethod
    def _filter(chips_given: tuple[str, ...]) -> Filter | None:
        if not chips_given:
            return None
        data: dict[str, list[str]] = {}
        for chip in chips_given:
            key, sep, value = chip.replace(":", "=", 1).partition("=")
            if not sep:
                raise FilterError(f"{chip!r} is not key=value (type=pdf, tag=hr, path=policies/, after=2025-01-01)")
            data.setdefault(key.strip().lower(), []).append(value.strip())
        return Filter.of(data)

    def scope(self, request: gr.Request) -> Scope:
        """The collections this session picked that its caller may read (the default collection when none)."""
        choice = self._choice(request)
        try:
            where = self._filter(choice.chips)
        except FilterError:
            where = None
        if self.library is None:
            return Scope([self.settings.default_collection], self.bot, self.store, self.settings, self.indexer, where)
        readable = self.readable(self.who(request))
        names = [name for name in dict.fromkeys(choice.names) if name in readable]
        if not names:
            default = self.settings.default_collection
            names = [default if default in readable or not readable else readable[0]]
        first = self.library.services(names[0])
        stores: dict[str, Store] = {name: self.library.services(name).store for name in names}
        return Scope(names, self.library.bot(names), first.store, first.settings, first.indexer, where, stores)

    def who(self, request: gr.Request) -> Identity | None:
        """The caller's identity from the request that started this event (never from what the page says)."""
        raw = request.request  # None only when called in-process: no credentials, so the anonymous role
        headers, cookies = (raw.headers, raw.cookies) if raw else ({}, {})
        try:
            return self.access.identify(headers, cookies)
        except BadCredentialsError:
            return None

    @staticmethod
    def may(identity: Identity | None, action: str, scope: Scope) -> bool:
        """May ``identity`` do ``action`` on the picked collections: every one to read or ask, the first (where
        documents are listed, added and removed) to change documents."""
        names = scope.names if POLICY[action] is Right.read else scope.names[:1]
        return bool(names) and all(allowed(identity, action, name) for name in names)

    def add_note(self, identity: Identity | None, scope: Scope) -> str:
        """Why this caller sees no upload form, and how to get one ("" when they may upload)."""
        if self.may(identity, "upload", scope):
            return ""
        if identity is not None and not identity.anonymous:
            return notice_html(
                f"You are signed in as {identity.name} ({identity.role.name}): adding documents needs "
                "an editor or the administrator."
            )
        if self.access.login_configured:  # Gradio's login form when everybody signs in, /signin when the page is open
            return notice_html(
                "Adding documents needs an editor or the administrator: sign in at /signin with such an account."
            )
        return notice_html(
            "Adding documents needs an editor: the operator gives people accounts with DOCBOT_USERS (or sets "
            "DOCBOT_ANONYMOUS_ROLE=admin on a one-person install)."
        )
