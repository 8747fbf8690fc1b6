"""How often a caller may call: a rate limit counted in the state database, and whose limit a request counts
against."""

from __future__ import annotations

from bot.access.policy import Identity
from bot.state.counters import WindowCounters


class RateLimiter:
    """At most ``limit`` requests per caller in any window of its counters' length (a minute), counted in the
    database (:mod:`bot.state.counters`), so a caller's requests to every replica add up. Refused requests count
    too: a caller who keeps hammering stays refused."""

    def __init__(self, counters: WindowCounters, limit: int) -> None:
        self.counters = counters
        self.limit = limit

    def retry_after(self, caller: str) -> int:
        """Count one request; 0 if it is allowed, else the whole seconds until one would be."""
        window = self.counters.hit(caller)
        return window.wait(self.limit) if window.recent > self.limit else 0


def rate_bucket(identity: Identity | None, address: str) -> str:
    """Whose rate limit a request counts against: a proven user's or proxy reader's own; a key's per address (a
    shared key, an embed's public one, is not one visitor's to use up for all); else the address's."""
    if identity is None or identity.anonymous:
        return f"ip:{address}"
    if identity.kind == "key":
        return f"{identity.proven_as}@ip:{address}"
    return identity.proven_as
