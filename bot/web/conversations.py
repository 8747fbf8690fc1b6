"""The API's use of stored conversations (:mod:`bot.state.conversations`, owned as
:func:`bot.access.owners.conversation_owner` says): ``/api/ask`` starts one when asked to keep it, continues one by
its id and returns the id; otherwise it stores nothing."""

from __future__ import annotations

from fastapi import HTTPException
from starlette.concurrency import run_in_threadpool

from bot.access.owners import conversation_owner
from bot.access.policy import Identity
from bot.access.readable_turns import readable_answer
from bot.answer.chat import History
from bot.answer.citations import Answer
from bot.state.conversations import ConversationNotFoundError, ConversationStore
from bot.web.models import AskRequest


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
