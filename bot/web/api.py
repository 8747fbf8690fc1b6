"""The HTTP side of docbot beside the chat page: REST + SSE under ``/api``, OpenAI-compatible under ``/v1``, the
embed page and widget, API keys, rate and size limits, CORS and frame-ancestors.

``install_api`` is the one entry point; ``app.py`` calls it before mounting the Gradio page at ``/``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, FastAPI
from sse_starlette import EventSourceResponse

from bot.access.policy import Access, Identity, readable_collections
from bot.access.rate_limits import RateLimiter
from bot.answer.chat import Bot
from bot.answer.citations import Answer
from bot.config import Settings
from bot.documents.indexed import list_documents
from bot.ops.health import StoreProbe
from bot.state.stores import Stores
from bot.state.uploads import UploadStore
from bot.web.collections import asked_collections
from bot.web.conversations import ApiConversations
from bot.web.edge import AnswerSlots
from bot.web.embed import install_embed
from bot.web.errors import failure, install_error_handlers
from bot.web.models import AskRequest, AskResponse, DocumentInfo, DocumentList, Problem, StoreProblem
from bot.web.openai_compat import openai_router
from bot.web.security import Guard, install_browser_policy
from bot.web.streams import Piece, answer_of, start_stream, store_down_fix
from index.errors import StoreUnavailableError

if TYPE_CHECKING:
    from bot.documents.library import Library

_STORE_DOWN: dict[int | str, dict[str, Any]] = {
    503: {
        "model": StoreProblem,
        "description": "The vector store is unavailable: which one, and the fix. (Asking: or DOCBOT_MAX_CONCURRENT_"
        "ANSWERS answers are being computed already; retry after the Retry-After header's seconds.)",
    }
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "description": text}
    for status, text in {
        401: "No identity (an API key, or a user's password as HTTP Basic) where anonymous callers may not ask, "
        "or credentials that are not valid.",
        403: "Signed in, but granted no collection (docbot access grant).",
        413: "The body is larger than DOCBOT_MAX_BODY_BYTES.",
        404: "A conversation_id that is not one of this caller's conversations.",
        422: "An empty question, one longer than DOCBOT_MAX_QUESTION_CHARS, history with conversation_id or keep, "
        "or a malformed body.",
        429: "Over DOCBOT_RATE_LIMIT_PER_MINUTE for this identity (or address), or too many bad credentials from "
        "this address (DOCBOT_AUTH_FAILURE_LIMIT); see the Retry-After header.",
    }.items()
} | _STORE_DOWN

_STREAM_DOC = {
    "description": 'Server-sent events: `text` events (`{"text": piece}`) as the answer is written, then one '
    "`answer` event with the same object as /api/ask; on a late failure an `error` event (`{detail, status}`).",
    "content": {"text/event-stream": {}},
}


def install_api(
    app: FastAPI, library: Library, settings: Settings, access: Access, slots: AnswerSlots, state: Stores
) -> None:
    """The REST/SSE API, the OpenAI-compatible API and the embed; conversations, uploads and the API's rate
    counters are ``state``'s."""
    origins = settings.embed_origins  # checked and normalised by Settings
    guard = Guard(access, RateLimiter(state.counters("api"), settings.rate_limit_per_minute))
    bot = library.bot([settings.default_collection])
    install_error_handlers(app, bot.retriever.store.location, store_down_fix(settings))
    app.add_api_route(
        "/api/health",
        _health(bot, StoreProbe(lambda: library.services(settings.default_collection).store.count())),
        methods=["GET"],
        tags=["api"],
        summary="Ready to answer: 200, or 503 while the vector store is unreachable (no key needed)",
        responses=_STORE_DOWN,
    )
    talks = ApiConversations(state.conversations, settings.default_collection)
    app.include_router(rest_router(library, settings, guard, slots, talks, state.uploads))
    app.include_router(openai_router(library, settings, guard, slots))
    install_embed(app, settings, origins)
    install_browser_policy(app, origins)


def _health(bot: Bot, probe: StoreProbe) -> Callable[[], Awaitable[dict[str, object]]]:
    async def health() -> dict[str, object]:  # on the event loop: never waits for the threads answering questions
        report: dict[str, object] = {"status": "ok", "chunks": await probe.chunks(), "generator": bot.generator_name}
        model = bot.backend.status() if bot.backend is not None else None
        if model is not None:  # docbot's own model process: up, starting or down (answers are extractive meanwhile)
            report["model"] = model
        return report

    return health


def rest_router(
    library: Library,
    settings: Settings,
    guard: Guard,
    slots: AnswerSlots,
    talks: ApiConversations,
    uploads: UploadStore,
) -> APIRouter:
    router = APIRouter(
        prefix="/api",
        tags=["api"],
        dependencies=[Depends(guard)],
        max_body_size=settings.max_body_bytes,
        responses=_ERRORS,
    )

    answering = [Depends(slots.for_request)]
    caller = Depends(guard)  # the router's own guard: FastAPI runs it once a request and hands its identity here

    def bot_for(request: AskRequest, identity: Identity) -> Bot:
        names = asked_collections(
            request.collection, settings.default_collection, identity, library.collections.listed()
        )
        return library.bot(names)

    @router.post("/ask", summary="Answer a question with cited passages", dependencies=answering)
    async def ask(request: AskRequest, identity: Identity = caller) -> AskResponse:
        bot, where = bot_for(request, identity), request.condition()
        history = await talks.history(request, identity)
        answer = await answer_of(bot, settings, request.question, history, request.k, where)
        return AskResponse.of(answer, await talks.keep(request, identity, answer))

    @router.post(
        "/ask/stream",
        response_class=EventSourceResponse,
        summary="The same answer, streamed as server-sent events",
        responses={200: _STREAM_DOC},
        dependencies=answering,
    )
    async def ask_stream(request: AskRequest, identity: Identity = caller) -> EventSourceResponse:
        bot, where = bot_for(request, identity), request.condition()
        history = await talks.history(request, identity)
        pieces = await start_stream(bot, settings, request.question, history, request.k, where)
        keep = partial(talks.keep, request, identity)
        return EventSourceResponse(
            answer_events(pieces, bot.retriever.store.location, store_down_fix(settings), keep), sep="\n"
        )

    @router.get("/documents", summary="The indexed documents of a collection, by title")
    def indexed_documents(identity: Identity = caller, collection: str | None = None) -> DocumentList:
        name = asked_collections(collection, settings.default_collection, identity, library.collections.listed())[0]
        services = library.services(name)
        listed = list_documents(services.store, services.settings, uploads)
        return DocumentList(documents=[DocumentInfo.of(d) for d in listed])

    @router.get("/collections", summary="The collections the caller may read")
    def readable(identity: Identity = caller) -> list[str]:
        return readable_collections(identity, library.collections.listed())

    return router


async def answer_events(
    pieces: AsyncIterator[Piece], store: str, store_fix: str, keep: Callable[[Answer], Awaitable[str | None]]
) -> AsyncIterator[dict[str, str]]:
    """``text`` events, then ``answer`` (once ``keep`` has stored it, if asked, and named its conversation); on
    failure an ``error`` event (naming the store and the fix, as a 503)."""
    try:
        async for piece in pieces:
            if isinstance(piece, Answer):
                yield {"event": "answer", "data": AskResponse.of(piece, await keep(piece)).model_dump_json()}
            else:
                yield {"event": "text", "data": json.dumps({"text": piece})}
    except Exception as exc:
        status, message = failure(exc)
        body: dict[str, object] = {"detail": message, "status": status}
        if isinstance(exc, StoreUnavailableError):
            body |= {"store": store, "fix": store_fix}
        yield {"event": "error", "data": json.dumps(body)}
