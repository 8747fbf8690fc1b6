"""Running the synchronous, CPU-bound :class:`~bot.answer.chat.Bot` off the event loop, for every API route.

A stream's first step (condense, retrieve, first sentence) runs before the response starts, so an empty question
or a store that is down still gets a proper HTTP status (:mod:`bot.web.errors`); errors after that become an error
event.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

from fastapi import HTTPException
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from bot.answer.chat import Bot, History
from bot.answer.citations import Answer
from bot.config import Settings
from index.filters import Filter

Piece = str | Answer


def checked_question(question: str, settings: Settings) -> str:
    if len(question) > settings.max_question_chars:
        raise HTTPException(
            422, f"the question is {len(question)} characters long; the limit is {settings.max_question_chars}"
        )
    return question


async def answer_of(
    bot: Bot, settings: Settings, question: str, history: History, k: int | None, where: Filter | None = None
) -> Answer:
    return await run_in_threadpool(bot.ask, checked_question(question, settings), history, k, where)


async def start_stream(
    bot: Bot, settings: Settings, question: str, history: History, k: int | None, where: Filter | None = None
) -> AsyncIterator[Piece]:
    """The answer's pieces, its first one already computed; the rest are computed as the client reads."""
    question = checked_question(question, settings)
    pieces = bot.stream(question, history, k, where)
    first = await run_in_threadpool(list, itertools.islice(pieces, 1))
    return iterate_in_threadpool(itertools.chain(first, pieces))


def store_down_fix(settings: Settings) -> str:
    """What the operator does when the vector store cannot be reached (part of every 503 about it)."""
    if settings.chroma_url:
        return (
            f"start the Chroma server at {settings.chroma_url} (chroma run) or make it reachable from docbot; "
            "requests are answered again as soon as it is back, without restarting docbot"
        )
    return "check that the local Chroma directory is readable and its disk has free space"


def with_fix(message: str, fix: str) -> str:
    """An OpenAI-style error message, which has no field of its own for the fix."""
    return f"{message}; to fix: {fix}"
