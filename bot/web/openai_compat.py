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
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, HTTPException
from sse_starlette import EventSourceResponse

from bot.access.policy import Identity, readable_collections
from bot.answer.citations import Answer
from bot.config import Settings
from bot.web.collections import asked_collections
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
from bot.web.security import Guard
from bot.web.streams import Piece, answer_of, start_stream, store_down_fix, with_fix

if TYPE_CHECKING:
    from bot.documents.library import Library

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


def completion(answer: Answer, model: str = MODEL_ID) -> ChatCompletion:
    return ChatCompletion(
        model=model,
        id=f"chatcmpl-{uuid.uuid4().hex}",
        created=int(time.time()),
        choices=[ChatChoice(message=AssistantMessage(content=message_content(answer)))],
        citations=answer.citations,
        refused=answer.refused,
    )


def _chunk_maker(model: str) -> Callable[..., str]:
    ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

    def chunk(delta: dict[str, str], finish_reason: str | None = None, **extra: Any) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
        body = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model}
        return json.dumps({**body, "choices": [choice], **extra})

    return chunk


async def completion_chunks(
    pieces: AsyncIterator[Piece], store_fix: str, model: str = MODEL_ID
) -> AsyncIterator[dict[str, str]]:
    """chat.completion.chunk events: the role, the text pieces, the sources, the end (with citations), [DONE]."""
    chunk = _chunk_maker(model)
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


def model_name(collection: str, default: str) -> str:
    """The /v1 model name of a collection: docbot/NAME, plain docbot for the server's default collection."""
    return MODEL_ID if collection == default else f"{MODEL_ID}/{collection}"


def model_collection(model: str, default: str) -> str:
    """The collection a /v1 model name asks: docbot/NAME → NAME; docbot or any other name → the default."""
    prefix = f"{MODEL_ID}/"
    return model[len(prefix) :] if model.startswith(prefix) else default


def openai_router(library: Library, settings: Settings, guard: Guard, slots: AnswerSlots) -> APIRouter:
    router = APIRouter(
        prefix="/v1", tags=["openai"], dependencies=[Depends(guard)], max_body_size=settings.max_body_bytes
    )
    created = int(time.time())
    default = settings.default_collection
    caller = Depends(guard)  # the router's own dependency: FastAPI runs it once a request

    @router.get("/models", summary="One model a collection the caller may read: docbot/NAME (docbot: the default)")
    def models(identity: Identity = caller) -> ModelList:
        readable = readable_collections(identity, library.collections.listed())
        return ModelList(data=[ModelCard(id=model_name(name, default), created=created) for name in readable])

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
    async def chat_completions(
        request: ChatCompletionRequest, identity: Identity = caller
    ) -> ChatCompletion | EventSourceResponse:
        name = model_collection(request.model, default)
        bot = library.bot(asked_collections(name, default, identity, library.collections.listed()))
        model = model_name(name, default)
        question, history = conversation(request.messages)
        if request.stream:
            pieces = await start_stream(bot, settings, question, history, None)
            return EventSourceResponse(completion_chunks(pieces, store_down_fix(settings), model), sep="\n")
        return completion(await answer_of(bot, settings, question, history, None), model)

    return router
