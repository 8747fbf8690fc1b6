"""Failed sign-ins and bad keys, counted per client address in the database (every replica sees them): over the
limit, an address waits out the window."""

from __future__ import annotations

from bot.state.counters import WindowCounters


class FailureThrottle:
    """At most ``limit`` failures per address in each window of ``counters``; at the limit, the address is locked
    out until that window ends. Successes change nothing."""

    def __init__(self, counters: WindowCounters, limit: int) -> None:
        self.counters = counters
        self.limit = limit

    def retry_after(self, address: str) -> int:
        """0 when ``address`` may try to sign in, else the whole seconds until it may again."""
        window = self.counters.peek(address)
        return window.wait if window.count >= self.limit else 0

    def fail(self, address: str) -> None:
        self.counters.hit(address)
