"""The OpenAI-compatible endpoint (``/v1/chat/completions``, ``/v1/models``): docbot as a model for any client.

The last user message is the question and earlier user/assistant pairs are the history. The answer's numbered
sources follow its text in the message content (so any chat front end shows them) and come structured in the
extra ``citations`` field.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from sse_starlette import EventSourceResponse

from bot.answer.chat import Bot
from bot.answer.citations import Answer
from bot.config import Settings
from bot.web.edge import AnswerSlots
from bot.web.errors import error_body, failure
from bot.web.models import (
    MODEL_ID,
    AssistantMessage,
    ChatChoice,
    ChatCompletion,
    ChatCompletionRequest,
    ChatMessage,
    ModelCard,
    ModelList,
)
from bot.web.streams import Piece, answer_of, start_stream, store_down_fix, with_fix

SOURCES_HEADING = "\n\nSources:\n"


def conversation(messages: list[ChatMessage]) -> tuple[str, list[tuple[str, str]]]:
    """The question (the last user message) and the history as (user, assistant) pairs."""
    turns = [(m.role, m.text()) for m in messages if m.role in ("user", "assistant")]
    if not turns or turns[-1][0] != "user":
        raise HTTPException(422, "the last message must be the user's question")
    history: list[tuple[str, str]] = []
    asked: list[str] = []
    for role, text in turns[:-1]:
        if role == "user":
            asked.append(text)
        elif asked:
            history.append(("\n".join(asked), text.split(SOURCES_HEADING, 1)[0]))
            asked = []
    return turns[-1][1], history


def message_content(answer: Answer) -> str:
    return answer.text + sources_suffix(answer)


def sources_suffix(answer: Answer) -> str:
    return SOURCES_HEADING + answer.sources_block() if answer.citations else ""


def completion(answer: Answer) -> ChatCompletion:
    return ChatCompletion(
        id=f"chatcmpl-{uuid.uuid4().hex}",
        created=int(time.time()),
        choices=[ChatChoice(message=AssistantMessage(content=message_content(answer)))],
        citations=answer.citations,
        refused=answer.refused,
    )


def _chunk_maker() -> Callable[..., str]:
    ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

    def chunk(delta: dict[str, str], finish_reason: str | None = None, **extra: Any) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
        body = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": MODEL_ID}
        return json.dumps({**body, "choices": [choice], **extra})

    return chunk


async def completion_chunks(pieces: AsyncIterator[Piece], store_fix: str) -> AsyncIterator[dict[str, str]]:
    """chat.completion.chunk events: the role, the text pieces, the sources, the end (with citations), [DONE]."""
    chunk = _chunk_maker()
    yield {"data": chunk({"role": "assistant", "content": ""})}
    try:
        async for piece in pieces:
            if not isinstance(piece, Answer):
                yield {"data": chunk({"content": piece})}
                continue
            if piece.citations:
                yield {"data": chunk({"content": sources_suffix(piece)})}
            citations = [asdict(c) for c in piece.citations]
            yield {"data": chunk({}, "stop", citations=citations, refused=piece.refused)}
    except Exception as exc:
        status, message = failure(exc)
        yield {"data": json.dumps(error_body(status, with_fix(message, store_fix) if status == 503 else message))}
    yield {"data": "[DONE]"}


def openai_router(bot: Bot, settings: Settings, guard: Callable[..., Any], slots: AnswerSlots) -> APIRouter:
    router = APIRouter(
        prefix="/v1", tags=["openai"], dependencies=[Depends(guard)], max_body_size=settings.max_body_bytes
    )
    created = int(time.time())

    @router.get("/models", summary="The one model docbot serves")
    def models() -> ModelList:
        return ModelList(data=[ModelCard(created=created)])

    @router.post(
        "/chat/completions",
        response_model=ChatCompletion,
        summary="Answer the last user message (OpenAI chat completions, streaming or not)",
        responses={
            200: {
                "content": {"text/event-stream": {}},
                "description": "A chat.completion; with stream=true, chat.completion.chunk events and [DONE].",
            }
        },
        dependencies=[Depends(slots.for_request)],
    )
    async def chat_completions(request: ChatCompletionRequest) -> ChatCompletion | EventSourceResponse:
        question, history = conversation(request.messages)
        if request.stream:
            pieces = await start_stream(bot, settings, question, history, None)
            return EventSourceResponse(completion_chunks(pieces, store_down_fix(settings)), sep="\n")
        return completion(await answer_of(bot, settings, question, history, None))

    return router
