"""The HTTP side of docbot beside the chat page: REST + SSE under ``/api``, OpenAI-compatible under ``/v1``, the
embed page and widget, API keys, rate and size limits, CORS and frame-ancestors.

``install_api`` is the one entry point; ``app.py`` calls it before mounting the Gradio page at ``/``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sse_starlette import EventSourceResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from bot.answer.chat import Bot
from bot.answer.citations import Answer
from bot.config import Settings
from bot.web import documents
from bot.web.access import Access
from bot.web.edge import AnswerSlots
from bot.web.embed import install_embed
from bot.web.health import StoreProbe
from bot.web.models import AskRequest, AskResponse, DocumentInfo, DocumentList, Problem, StoreProblem
from bot.web.openai_compat import error_response, openai_router
from bot.web.security import Guard, RateLimiter, checked_origins, install_browser_policy
from bot.web.streams import Piece, answer_of, failure, start_stream, store_down_fix, with_fix
from index.errors import StoreUnavailableError

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
        413: "The body is larger than DOCBOT_MAX_BODY_BYTES.",
        422: "An empty question, one longer than DOCBOT_MAX_QUESTION_CHARS, or a malformed body.",
        429: "Over DOCBOT_RATE_LIMIT_PER_MINUTE for this identity (or address), or too many bad credentials from "
        "this address (DOCBOT_AUTH_FAILURE_LIMIT); see the Retry-After header.",
    }.items()
} | _STORE_DOWN

_STREAM_DOC = {
    "description": 'Server-sent events: `text` events (`{"text": piece}`) as the answer is written, then one '
    "`answer` event with the same object as /api/ask; on a late failure an `error` event (`{detail, status}`).",
    "content": {"text/event-stream": {}},
}


def install_api(app: FastAPI, bot: Bot, settings: Settings, access: Access, slots: AnswerSlots) -> None:
    origins = checked_origins(settings.embed_origins)
    guard = Guard(access, RateLimiter(settings.rate_limit_per_minute))
    install_error_handlers(app, bot.retriever.store.location, store_down_fix(settings))
    app.add_api_route(
        "/api/health",
        _health(bot, StoreProbe(bot.retriever.store.count)),
        methods=["GET"],
        tags=["api"],
        summary="Ready to answer: 200, or 503 while the vector store is unreachable (no key needed)",
        responses=_STORE_DOWN,
    )
    app.include_router(rest_router(bot, settings, guard, slots))
    app.include_router(openai_router(bot, settings, guard, slots))
    install_embed(app, settings, origins)
    install_browser_policy(app, origins)


def _health(bot: Bot, probe: StoreProbe) -> Callable[[], Awaitable[dict[str, object]]]:
    async def health() -> dict[str, object]:  # on the event loop: never waits for the threads answering questions
        return {"status": "ok", "chunks": await probe.chunks(), "generator": bot.generator_name}

    return health


def rest_router(bot: Bot, settings: Settings, guard: Callable[..., Any], slots: AnswerSlots) -> APIRouter:
    router = APIRouter(
        prefix="/api",
        tags=["api"],
        dependencies=[Depends(guard)],
        max_body_size=settings.max_body_bytes,
        responses=_ERRORS,
    )

    answering = [Depends(slots.for_request)]

    @router.post("/ask", summary="Answer a question with cited passages", dependencies=answering)
    async def ask(request: AskRequest) -> AskResponse:
        return AskResponse.of(await answer_of(bot, settings, request.question, request.history, request.k))

    @router.post(
        "/ask/stream",
        response_class=EventSourceResponse,
        summary="The same answer, streamed as server-sent events",
        responses={200: _STREAM_DOC},
        dependencies=answering,
    )
    async def ask_stream(request: AskRequest) -> EventSourceResponse:
        pieces = await start_stream(bot, settings, request.question, request.history, request.k)
        return EventSourceResponse(
            answer_events(pieces, bot.retriever.store.location, store_down_fix(settings)), sep="\n"
        )

    @router.get("/documents", summary="The indexed documents, by title")
    def indexed_documents() -> DocumentList:
        listed = documents.list_documents(bot.retriever.store, settings)
        return DocumentList(documents=[DocumentInfo.of(d) for d in listed])

    return router


async def answer_events(pieces: AsyncIterator[Piece], store: str, store_fix: str) -> AsyncIterator[dict[str, str]]:
    """``text`` events, then ``answer``; on failure an ``error`` event (naming the store and the fix, as a 503)."""
    try:
        async for piece in pieces:
            if isinstance(piece, Answer):
                yield {"event": "answer", "data": AskResponse.of(piece).model_dump_json()}
            else:
                yield {"event": "text", "data": json.dumps({"text": piece})}
    except Exception as exc:
        status, message = failure(exc)
        body: dict[str, object] = {"detail": message, "status": status}
        if status == 503:
            body |= {"store": store, "fix": store_fix}
        yield {"event": "error", "data": json.dumps(body)}


def _is_openai(request: Request) -> bool:
    return request.url.path.startswith("/v1/")


def install_error_handlers(app: FastAPI, store_location: str, store_fix: str) -> None:
    """FastAPI's error bodies under /api, OpenAI's under /v1; a store that is down is a 503 naming it and the fix."""

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if _is_openai(request):
            return error_response(exc.status_code, str(exc.detail), exc.headers)
        return await http_exception_handler(request, exc)

    async def on_invalid_request(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        if _is_openai(request):
            first = exc.errors()[0] if exc.errors() else {}
            where = ".".join(str(part) for part in first.get("loc", ()))
            return error_response(422, f"{where}: {first.get('msg', 'invalid request')}")
        # FastAPI's own body, without the echo of what was sent (bytes that are not UTF-8 made it fail with a 500)
        problems = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()
        ]
        return JSONResponse({"detail": problems}, status_code=422)

    async def on_store_down(request: Request, exc: Exception) -> Response:
        if _is_openai(request):
            return error_response(503, with_fix(str(exc), store_fix))
        return JSONResponse({"detail": str(exc), "store": store_location, "fix": store_fix}, status_code=503)

    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_invalid_request)
    app.add_exception_handler(StoreUnavailableError, on_store_down)
