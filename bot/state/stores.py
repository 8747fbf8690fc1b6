"""What a part that keeps state is handed: the process's stores, built once by the composition root (``app.State``).

The web layer, the page, the access policy and the CLI's admin commands construct no store of their own: they
are given an object of this shape and read the store they need from it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from bot.state.conversations import ConversationStore
    from bot.state.counters import WindowCounters
    from bot.state.database import Database
    from bot.state.feedback import FeedbackStore
    from bot.state.grants import GrantStore
    from bot.state.uploads import UploadStore

#: The rate-limit counters' buckets, each its own namespace in the counters' table: requests a minute to the API,
#: the page and the evidence viewer, and failed sign-ins (over DOCBOT_AUTH_FAILURE_WINDOW_S).
RateBucket = Literal["api", "page", "view", "auth"]


class Stores(Protocol):
    """The state database and its stores, one of each per process."""

    @property
    def database(self) -> Database: ...

    @property
    def conversations(self) -> ConversationStore: ...

    @property
    def feedback(self) -> FeedbackStore: ...

    @property
    def uploads(self) -> UploadStore: ...

    @property
    def grants(self) -> GrantStore: ...

    def counters(self, bucket: RateBucket) -> WindowCounters: ...
