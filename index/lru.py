"""A least-recently-used map held to a budget, for every cache a caller can fill with values of its choosing.

Each value weighs something (a mask its bytes, a sign-in token 1) and the values held never weigh more than the
budget together: keeping one drops the least recently used first, and a value heavier than the whole budget is not
kept at all. Thread-safe: the server's answering threads share one.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from threading import Lock
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BoundedLRU(Generic[K, V]):
    """``key → value``, at most ``budget`` in weight (``weigh(value)`` each); ``dropped(key, value)`` is told of each
    value let go to make room (not of one removed by :meth:`pop`)."""

    def __init__(self, budget: int, weigh: Callable[[V], int], dropped: Callable[[K, V], None] | None = None) -> None:
        self._budget = budget
        self._weigh = weigh
        self._dropped = dropped
        self._items: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._held = 0
        self._lock = Lock()

    @property
    def held(self) -> int:
        """The weight of the values held now."""
        return self._held

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: K) -> V | None:
        """The value kept under ``key`` (None: not kept), now the most recently used."""
        with self._lock:
            entry = self._items.get(key)
            if entry is None:
                return None
            self._items.move_to_end(key)
            return entry[0]

    def put(self, key: K, value: V) -> None:
        """Keep ``value`` under ``key`` (replacing what was there), dropping the least recently used to make room."""
        weight = self._weigh(value)
        let_go: list[tuple[K, V]] = []
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._held -= old[1]
            if weight > self._budget:
                return
            while self._items and self._held + weight > self._budget:
                dropped_key, (dropped_value, dropped_weight) = self._items.popitem(last=False)
                self._held -= dropped_weight
                let_go.append((dropped_key, dropped_value))
            self._items[key] = (value, weight)
            self._held += weight
        if self._dropped is not None:
            for dropped_key, dropped_value in let_go:  # outside the lock: the callback may take its own
                self._dropped(dropped_key, dropped_value)

    def pop(self, key: K) -> V | None:
        """Remove ``key``; its value (None: not kept)."""
        with self._lock:
            entry = self._items.pop(key, None)
            if entry is None:
                return None
            self._held -= entry[1]
            return entry[0]
