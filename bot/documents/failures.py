"""What a person adding or removing documents is told when something behind it fails (:mod:`bot.documents.changes`).

Words for the person at the page: what failed, what state the index is in, what to do next. No server path or
internal detail reaches the browser; the server log has those.
"""

from __future__ import annotations

from index.errors import IndexRunError, StoreUnavailableError

REMOVE_STORE_DOWN = (
    "The document was not removed: the document store is unavailable. Remove it again once the store is back."
)

UPLOAD_DATABASE_DOWN = (
    "The files were not added: the state database, which keeps who uploaded each document for every server, is "
    "unreachable. Nothing indexed before is lost. Add the files again in a moment."
)
REMOVE_DATABASE_DOWN = (
    "The document was not removed: the state database, which keeps who uploaded it, is unreachable. Remove it "
    "again in a moment."
)


def upload_failure(exc: IndexRunError | StoreUnavailableError) -> str:
    """What the page says when indexing an upload fails: what failed, the state of the index, the next step."""
    run_failed = isinstance(exc, IndexRunError)
    cause = exc.__cause__ if run_failed else exc
    if run_failed and exc.disk_full:
        what = "the server's disk is full"
        retry = "Free some disk space on the server (or ask its administrator to), then add the files again."
    elif isinstance(cause, StoreUnavailableError):
        what = "the document store is unavailable"
        retry = "Add the files again once it is back."
    else:
        what = f"indexing them failed ({type(cause).__name__})"
        retry = "The server log has the details; add the files again once the cause is fixed."
    if not run_failed:  # the store failed outside the run's writes: before them, or after all
        state = "Nothing indexed before is lost."
    elif exc.index_unchanged:
        state = "The index is unchanged: every document in it can still be asked about as before."
    else:
        state = (
            "Undoing the run failed too, so the index may hold part of these files; adding them again once the "
            "cause is fixed completes them."
        )
    return f"The files were not added: {what}. {state} {retry}"
