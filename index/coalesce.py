"""Questions asked at the same time are embedded together: one forward pass for all that wait, not one each.

On a server, every concurrent request embeds its own question. Run side by side, those single-text forward passes
compete for the same cores (each with its own intra-op threads) and each pays the model's fixed per-call cost; run
as one batch, eight short questions cost little more than two. :class:`Coalescer` runs one batch at a time: a
caller that finds the model idle computes its text at once (no waiting, no timer), and callers that arrive
meanwhile queue up; when a batch ends, the oldest waiting caller computes everything queued by then (at most
``limit`` texts) for the whole group.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

import numpy as np


class _Slot:
    """One caller's text, and then its vector (or the error its batch raised)."""

    __slots__ = ("batch", "error", "ready", "text", "vector")

    def __init__(self, text: str) -> None:
        self.text = text
        self.ready = threading.Event()
        self.vector: np.ndarray | None = None
        self.error: BaseException | None = None
        self.batch: list[_Slot] | None = None  # given to the caller that is to compute the next batch

    def result(self) -> np.ndarray:
        if self.error is not None:
            raise self.error
        assert self.vector is not None
        return self.vector


class Coalescer:
    """``encode`` (texts → one row each) for one text at a time, from any number of threads, batched as they meet."""

    def __init__(self, encode: Callable[[list[str]], np.ndarray], limit: int) -> None:
        self._encode = encode
        self._limit = max(1, limit)
        self._lock = threading.Lock()
        self._waiting: deque[_Slot] = deque()
        self._busy = False

    def __call__(self, text: str) -> np.ndarray:
        """``text``'s vector, a ``(1, dimension)`` array."""
        slot = _Slot(text)
        with self._lock:
            if self._busy:
                self._waiting.append(slot)
                batch = None
            else:
                self._busy = True
                batch = [slot]
        if batch is None:
            slot.ready.wait()
            batch = slot.batch
            if batch is None:  # another caller computed it
                return slot.result()
        self._run(batch)
        return slot.result()

    def _run(self, batch: list[_Slot]) -> None:
        """Compute ``batch``, wake its callers, and hand what queued meanwhile to the oldest waiting caller."""
        try:
            vectors = self._encode([slot.text for slot in batch])
            for row, slot in enumerate(batch):
                slot.vector = vectors[row : row + 1]
        except BaseException as exc:  # every caller of the batch gets the error, and the queue moves on
            for slot in batch:
                slot.error = exc
        finally:
            with self._lock:
                following = [self._waiting.popleft() for _ in range(min(self._limit, len(self._waiting)))]
                if following:
                    following[0].batch = following
                else:
                    self._busy = False
            for slot in batch[1:]:
                slot.ready.set()
            if following:
                following[0].ready.set()
