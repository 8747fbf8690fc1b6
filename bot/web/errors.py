"""The one place the HTTP side (``/api`` and ``/v1``) turns errors into responses.

Domain errors have a status here (a question that cannot be answered as asked: 422; a collection renamed or deleted
while it was being answered: 404; the vector store down: 503, naming the store and the fix); FastAPI's own
(validation, HTTP errors) keep theirs. Bodies are FastAPI's shape under ``/api`` and OpenAI's under ``/v1``. Anything
else is a bug: 500, logged, no detail to the caller (a ``ValueError`` from Chroma is not the caller's fault).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from bot.answer.errors import QuestionError
from bot.state.database import DatabaseError
from bot.web.streams import with_fix
from index.errors import CollectionError, StoreUnavailableError

logger = logging.getLogger(__name__)

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    503: "service_unavailable",
}


def error_body(status: int, message: str) -> dict[str, dict[str, str | int]]:
    """An error in OpenAI's shape, which OpenAI clients turn into their own exceptions."""
    return {"error": {"message": message, "type": _ERROR_TYPES.get(status, "server_error"), "code": status}}


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, message), status_code=status, headers=headers)


#: What each domain error is to an HTTP caller. A collection error here is one that went away after the request's
#: access check (renamed or deleted meanwhile, by ``docbot collections`` in another process): a 404 like any other
#: collection the caller cannot read.
STATUS: dict[type[Exception], int] = {
    QuestionError: 422,
    CollectionError: 404,
    StoreUnavailableError: 503,
    DatabaseError: 503,
}
#: What the caller is told then: never the error's own text, which may name the other collections or a Chroma id.
COLLECTION_GONE = "that collection was renamed or deleted meanwhile: ask again, or pick another collection"


def status_of(exc: Exception) -> int:
    return next((status for kind, status in STATUS.items() if isinstance(exc, kind)), 500)


def message_of(exc: Exception) -> str:
    """What the caller is told of a domain error (a collection error's own text stays in the server log)."""
    if isinstance(exc, CollectionError):
        logger.info("a request's collection went away: %s (%s)", exc, exc.__cause__)
        return COLLECTION_GONE
    return str(exc)


def failure(exc: Exception) -> tuple[int, str]:
    """Status and message for an error in the middle of a stream (the response has already started)."""
    status = status_of(exc)
    if status == 500:
        logger.exception("the answer stream failed", exc_info=exc)
        return 500, "internal error while answering"
    return status, message_of(exc)


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

    async def on_domain_error(request: Request, exc: Exception) -> Response:
        status, message = status_of(exc), message_of(exc)
        store_down = isinstance(exc, StoreUnavailableError)  # a 503 about the state database names no store
        if _is_openai(request):
            return error_response(status, with_fix(message, store_fix) if store_down else message)
        body: dict[str, str] = {"detail": message}
        if store_down:
            body |= {"store": store_location, "fix": store_fix}
        return JSONResponse(body, status_code=status)

    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_invalid_request)
    for kind in STATUS:
        app.add_exception_handler(kind, on_domain_error)
