"""Failed sign-ins and bad keys, counted per client address: over the limit, an address waits out its window."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

#: Addresses forgotten once this many with no recent failure pile up (the memory bound).
_SWEEP_AT = 10_000


class FailureThrottle:
    """At most ``limit`` failures per address in any ``window_s`` seconds; at the limit, the address is locked out
    until its oldest counted failure leaves the window. Successes change nothing. Used only from the event loop."""

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, address: str, now: float) -> deque[float]:
        failures = self._failures.get(address, deque())
        while failures and failures[0] <= now - self.window_s:
            failures.popleft()
        return failures

    def retry_after(self, address: str) -> int:
        """0 when ``address`` may try to sign in, else the whole seconds until it may again."""
        now = self._clock()
        failures = self._recent(address, now)
        if len(failures) < self.limit:
            return 0
        return max(1, math.ceil(failures[0] + self.window_s - now))

    def fail(self, address: str) -> None:
        now = self._clock()
        if len(self._failures) >= _SWEEP_AT:
            for stale in [a for a in self._failures if not self._recent(a, now)]:
                del self._failures[stale]
        self._failures.setdefault(address, deque()).append(now)
