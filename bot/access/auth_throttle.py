"""Failed sign-ins and bad keys, counted per client address in the database (every replica sees them): over the
limit, an address waits until its failures fade."""

from __future__ import annotations

from bot.state.counters import WindowCounters


class FailureThrottle:
    """At most ``limit`` failures per address in any window of its counters' length; at the limit, the address is
    locked out until its failures fade below the limit. Successes change nothing."""

    def __init__(self, counters: WindowCounters, limit: int) -> None:
        self.counters = counters
        self.limit = limit

    def retry_after(self, address: str) -> int:
        """0 when ``address`` may try to sign in, else the whole seconds until it may again."""
        window = self.counters.peek(address)
        return window.wait(self.limit) if window.recent >= self.limit else 0

    def fail(self, address: str) -> None:
        self.counters.hit(address)
