"""Whose conversation it is, from who proved what, and the API's use of stored conversations
(:mod:`bot.state.conversations`): ``/api/ask`` starts one when asked to keep it, continues one by its id and returns
the id; otherwise it stores nothing."""

from __future__ import annotations

from fastapi import HTTPException
from starlette.concurrency import run_in_threadpool

from bot.answer.chat import History
from bot.answer.citations import Answer
from bot.state.conversations import ConversationNotFoundError, ConversationStore
from bot.web.access import Identity
from bot.web.models import AskRequest
from bot.web.readable_turns import readable_answer

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


class ApiConversations:
    """``conversation_id`` on ``/api/ask``: the stored history to answer with, and the turn kept afterwards."""

    def __init__(self, store: ConversationStore, default_collection: str) -> None:
        self.store = store
        self.default_collection = default_collection

    async def history(self, request: AskRequest, identity: Identity) -> History:
        stored = request.conversation_id is not None or request.keep
        if stored and request.history:
            raise HTTPException(
                422, "send either history or conversation_id/keep, not both: a stored conversation has its own history"
            )
        if request.conversation_id is None:
            return request.history
        try:
            answers = await run_in_threadpool(self.store.answers, request.conversation_id, conversation_owner(identity))
        except ConversationNotFoundError as exc:
            raise HTTPException(404, str(exc)) from exc
        # what the caller can no longer read does not come back, not even as a follow-up's context
        shown = [readable_answer(answer, identity, self.default_collection) for answer in answers]
        return [(answer.question, answer.text) for answer in shown]

    async def keep(self, request: AskRequest, identity: Identity, answer: Answer) -> str | None:
        """Store the answered turn when the request continued a conversation or asked to keep a new one; the
        conversation's id (None: nothing was stored)."""
        if request.conversation_id is None and not request.keep:
            return None
        return await run_in_threadpool(
            self.store.add_turn, request.conversation_id, conversation_owner(identity), answer
        )
