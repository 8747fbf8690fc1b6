"""What the chat page says when something behind it fails: answering a question, or indexing an upload.

Words for the person at the page: what failed, what state the index is in, what to do next. No server path or
internal detail reaches the browser; the server log has those.
"""

from __future__ import annotations

from index.pipeline import IndexRunError
from index.store import StoreUnavailableError

STORE_DOWN_ANSWER = (
    "The document store is unavailable right now, so nothing can be searched. Please ask again in a moment: "
    "answers resume as soon as it is back."
)
STORE_DOWN_SOURCES = (
    "No sources: the document store is unavailable, so no passage could be searched. "
    "Sources appear here again once it is back."
)
ANSWER_FAILED_SOURCES = "No sources: answering this question failed."

#: How ``index/pipeline.py`` says that a failed run left the index as it was (undone, or refused before any write).
_INDEX_UNCHANGED = ("the index is as it was before this run", "to index safely")
#: How a full disk shows in a failure: the OS, SQLite inside Chroma, the pipeline's check for room.
_DISK_FULL = ("No space left on device", "disk is full", "not enough free disk space")


def answer_failure(exc: Exception) -> tuple[str, str]:
    """What the chat reply and the sources panel say when answering a question fails."""
    if isinstance(exc, StoreUnavailableError):
        return STORE_DOWN_ANSWER, STORE_DOWN_SOURCES
    return f"Sorry, answering failed ({type(exc).__name__}); the server log has the details.", ANSWER_FAILED_SOURCES


def upload_failure(exc: StoreUnavailableError) -> str:
    """What the page says when indexing an upload fails: what failed, the state of the index, the next step."""
    text = str(exc)
    cause = exc.__cause__ if isinstance(exc, IndexRunError) else exc
    if any(sign in text for sign in _DISK_FULL):
        what = "the server's disk is full"
        retry = "Free some disk space on the server (or ask its administrator to), then add the files again."
    elif isinstance(cause, StoreUnavailableError):
        what = "the document store is unavailable"
        retry = "Add the files again once it is back."
    else:
        what = f"indexing them failed ({type(cause).__name__})"
        retry = "The server log has the details; add the files again once the cause is fixed."
    if not isinstance(exc, IndexRunError):  # the store failed outside the run's writes: before them, or after all
        state = "Nothing indexed before is lost."
    elif any(sign in text for sign in _INDEX_UNCHANGED):
        state = "The index is unchanged: every document in it can still be asked about as before."
    else:
        state = (
            "Undoing the run failed too, so the index may hold part of these files; adding them again once the "
            "cause is fixed completes them."
        )
    return f"The files were not added: {what}. {state} {retry}"
