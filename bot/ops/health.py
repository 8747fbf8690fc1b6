"""The store check behind ``/api/health``: never waits for the threads answering questions.

The count runs on a thread of its own, is reused for ``ttl_s`` and waited for at most ``timeout_s``; past that
the last finished check answers (its count, or its error). A check still running is joined, not repeated, so a
slow store cannot pile up threads.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor


class StoreProbe:
    def __init__(
        self,
        count: Callable[[], int],
        ttl_s: float = 1.0,
        timeout_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._count = count
        self.ttl_s = ttl_s
        self.timeout_s = timeout_s
        self._clock = clock
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="docbot-health")
        self._pending: Future[int] | None = None
        self._counted: tuple[float, int] | None = None
        self._failure: Exception | None = None

    async def chunks(self) -> int | None:
        """The chunk count (None while the first check is still running); a store that is down raises its error."""
        if self._counted is not None and self._clock() - self._counted[0] < self.ttl_s:
            return self._counted[1]
        pending = self._pending = self._pending or self._executor.submit(self._count)
        try:
            count = await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(pending)), self.timeout_s)
        except TimeoutError:
            if self._failure is not None:
                raise self._failure from None
            return self._counted[1] if self._counted is not None else None
        except Exception as exc:
            self._failure, self._counted = exc, None
            raise
        finally:
            if pending.done():
                self._pending = None
        self._failure, self._counted = None, (self._clock(), count)
        return count
