"""The page's sessions: Gradio's login token → the identity that signed in with it (see :mod:`bot.web.access_gate`).

Anyone who can sign in can sign in again and again (the embed key is public by design), so the sessions are held to
a count, the least recently used let go first, and each ends ``lifetime_s`` after its sign-in. A session let go here
is taken out of Gradio's own token table too, so neither table grows without bound; a token Gradio forgot (log out)
is no session either.
"""

from __future__ import annotations

import time
from collections.abc import Callable, MutableMapping
from typing import Generic, TypeVar

from index.lru import BoundedLRU

#: Who signed in (bot.access.policy's Identity; any value here).
Identity = TypeVar("Identity")

#: Sessions kept unless told otherwise (the defaults of the settings signin_tokens and signin_token_ttl_s).
LIMIT = 10_000
LIFETIME_S = 12 * 3600.0


class PageSessions(Generic[Identity]):
    """At most ``limit`` sessions, each for ``lifetime_s`` seconds (by ``clock``) after its sign-in."""

    def __init__(
        self, limit: int = LIMIT, lifetime_s: float = LIFETIME_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.lifetime_s = lifetime_s
        self._clock = clock
        self._gradio: MutableMapping[str, str] | None = None
        self._kept: BoundedLRU[str, tuple[Identity, float]] = BoundedLRU(limit, lambda _: 1, self._let_go)

    def follow(self, gradio_tokens: MutableMapping[str, str]) -> None:
        """Gradio's token table, once the page is mounted: what it forgot ends the session, what ends here goes from
        it too."""
        self._gradio = gradio_tokens

    def add(self, token: str, identity: Identity) -> None:
        """``identity`` signed in and got ``token`` (the least recently used session goes if the count is full)."""
        self._kept.put(token, (identity, self._clock()))

    def identity(self, token: str) -> Identity | None:
        """Who signed in with ``token``; None for a token never given, let go, expired or logged out."""
        found = self._kept.get(token)
        if found is None:
            return None
        identity, since = found
        if self._clock() - since >= self.lifetime_s or (self._gradio is not None and token not in self._gradio):
            self._kept.pop(token)
            self._let_go(token, found)
            return None
        return identity

    def _let_go(self, token: str, _: object) -> None:
        if self._gradio is not None:
            self._gradio.pop(token, None)
