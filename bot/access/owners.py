"""Whose a stored conversation (and a vote) is, from who proved what (:attr:`bot.access.policy.Identity.proven_as`)."""

from __future__ import annotations

from bot.access.policy import Identity

#: The owner of anonymous API callers' conversations: for them the unguessable conversation id is the only key.
ANONYMOUS_OWNER = "anonymous"


def conversation_owner(identity: Identity, browser_id: str | None = None) -> str:
    """Who a conversation belongs to: a signed-in user's ``user:<name>`` or a proxy reader's ``proxy:<name>``
    (:attr:`Identity.proven_as`); for a page visitor signed in with nobody's password (anonymous, or a key: keys are
    shared, an embed's is public) their own browser's random ``browser:<id>``; an API caller with a key
    ``key:<name>`` (continued by its unguessable id, never listed); else :data:`ANONYMOUS_OWNER`."""
    shared = identity.anonymous or identity.kind == "key"
    if shared and browser_id:
        return f"browser:{browser_id}"
    return ANONYMOUS_OWNER if identity.anonymous else identity.proven_as
