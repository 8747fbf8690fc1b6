"""The collections a request asks for, checked against what its caller may read
(:func:`bot.access.policy.readable_collections`): a request that names a collection the caller may not read gets
exactly the answer a name that does not exist gets, so nothing tells the two apart.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import HTTPException

from bot.access.policy import Identity, readable_collections
from index.collections import check_name
from index.errors import CollectionError

#: At most this many collections in one question.
MAX_COLLECTIONS = 20


def asked_collections(
    requested: str | Sequence[str] | None, default: str, identity: Identity | None, collections: Sequence[str]
) -> list[str]:
    """The collections a request names (``default`` when none), each one the caller may read; else a 404 (a 422 for a
    name no collection could have)."""
    names = [requested] if isinstance(requested, str) else list(requested or [default])
    if not names or len(names) > MAX_COLLECTIONS:
        raise HTTPException(422, f"collection: name 1 to {MAX_COLLECTIONS} collections")
    try:
        names = [check_name(name) for name in names]
    except CollectionError as exc:
        raise HTTPException(422, str(exc)) from exc
    readable = set(readable_collections(identity, collections))
    unknown = [name for name in names if name not in readable]
    if unknown:
        raise HTTPException(404, f"no collection {unknown[0]!r} that you may read")
    return list(dict.fromkeys(names))
