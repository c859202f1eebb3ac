"""Every refusal as application/problem+json (RFC 9457) with a stable `code` and the
seed's Japanese `message_ja`."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
import redis.exceptions
from eventsourcing.persistence import InterfaceError, OperationalError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Mount

from api.fields import DATE_OUT_OF_RANGE, INVALID_TEXT
from lifecycle.availability import BrokerDown, EventStoreBusy, EventStoreDown, describe
from lifecycle.domain.errors import (
    BodyTooLarge,
    BrokerUnavailable,
    DateOutOfRange,
    DomainError,
    InternalError,
    InvalidText,
    MalformedJson,
    MethodNotAllowed,
    Refusal,
    StoreUnavailable,
    ValidationFailed,
)

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
STATUS_OF = {
    Refusal.NOT_FOUND: 404,
    Refusal.CONFLICT: 409,
    Refusal.INVALID: 422,
    Refusal.UNAVAILABLE: 503,
    Refusal.TOO_LARGE: 413,
    Refusal.UNAUTHENTICATED: 401,
    Refusal.FORBIDDEN: 403,
    Refusal.RATE_LIMITED: 429,
}


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_JSON


def problem(
    status: int, code: str, title: str, detail: str, message_ja: str, request: Request,
    headers: dict[str, str] | None = None, **extra: Any,
) -> JSONResponse:
    body = {
        "type": f"urn:lifecycle:problem:{code.lower().replace('_', '-')}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "code": code,
        "message_ja": message_ja,
        **extra,
    }
    return ProblemResponse(body, status_code=status, headers=headers)


def refusal(
    error: DomainError, request: Request, status: int | None = None, headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """The problem of one of our own refusals (a DomainError class carries code and wording)."""
    return problem(
        status or STATUS_OF[error.kind], error.code, error.title, error.detail, error.message_ja, request,
        headers=headers, **error.extra, **extra,
    )


def _jsonable(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in errors]


async def domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    response = refusal(exc, request)
    if exc.kind is Refusal.UNAUTHENTICATED:
        response.headers["WWW-Authenticate"] = 'Bearer realm="lifecycle"'
    if "retry_after" in exc.extra:  # 429 and 503: when to try again, in whole seconds
        response.headers["Retry-After"] = str(max(1, int(exc.extra["retry_after"])))
    return response


# Schema errors with a code of their own, most telling first: refused text (NUL, a line
# break...) says more than a missing field beside it. Pydantic itself refuses a lone
# surrogate as `string_unicode`.
_CODED_ERRORS: tuple[tuple[frozenset[str], type[DomainError]], ...] = (
    (frozenset({INVALID_TEXT, "string_unicode"}), InvalidText),
    (frozenset({DATE_OUT_OF_RANGE}), DateOutOfRange),
)


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _jsonable(list(exc.errors()))
    fields = ", ".join(".".join(str(p) for p in e["loc"][1:]) or str(e["loc"][0]) for e in errors)
    types = {e["type"] for e in errors}
    if "json_invalid" in types:
        return refusal(MalformedJson("The request body could not be parsed as JSON."), request, errors=errors)
    for coded, error_class in _CODED_ERRORS:
        if types & coded:
            return refusal(error_class(f"Refused fields: {fields}."), request, errors=errors)
    if errors and all(e["loc"][:1] == ["path"] for e in errors):
        # A malformed id in the path names no resource.
        return problem(
            404, "RESOURCE_NOT_FOUND", "No such resource", f"Nothing is found at {request.url.path}.",
            "該当する情報が見つかりません。", request, errors=errors,
        )
    return refusal(ValidationFailed(f"Invalid fields: {fields}."), request, errors=errors)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> str:
    """Every method some route answers on this path: a path may have a GET route and a PATCH
    route, and Starlette's own Allow names only the first one it matched. Mounts (the docs'
    files) match every method: their own 405 says what they allow."""
    routes = [route for route in request.app.router.routes if not isinstance(route, Mount)]
    allowed = [
        method for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes)
    ]
    return ", ".join(allowed)


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and isinstance(exc.__cause__, (ValueError, RecursionError)):
        # FastAPI's "error parsing the body": invalid UTF-8 (a ValueError) or JSON nested
        # deeper than the parser goes (RecursionError). Malformed JSON, like any other.
        return refusal(MalformedJson("The request body could not be parsed as JSON (or is not UTF-8)."), request, 422)
    if exc.status_code == 413:
        # The rest of the body stays unread: the connection cannot carry another request.
        limit = {"limit_bytes": exc.limit} if hasattr(exc, "limit") else {}
        return refusal(BodyTooLarge(str(exc.detail), **limit), request, headers={"Connection": "close"})
    if exc.status_code == 405:
        error = MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}.")
        allow = _allowed_methods(request) or (exc.headers or {}).get("Allow", "")
        return refusal(error, request, 405, headers={"Allow": allow})
    codes = {404: ("NOT_FOUND", "該当する情報が見つかりません。")}
    code, message_ja = codes.get(exc.status_code, (f"HTTP_{exc.status_code}", "リクエストを処理できませんでした。"))
    return problem(exc.status_code, code, str(exc.detail), str(exc.detail), message_ja, request, headers=exc.headers)


# Retry-After of the 503s: the store is tried again every quarter second while it is away,
# the broker by each request that needs it.
STORE_RETRY_AFTER_SECONDS = 2
BROKER_RETRY_AFTER_SECONDS = 5
STORE_ERRORS = (EventStoreDown, OperationalError, InterfaceError, psycopg.OperationalError, psycopg.InterfaceError)
BROKER_ERRORS = (BrokerDown, redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


async def store_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """503 STORE_UNAVAILABLE with Retry-After. An outage is logged once by the store itself
    (lifecycle.adapters.event_store), not here for every request it refuses."""
    if isinstance(exc, EventStoreDown) and not isinstance(exc, EventStoreBusy):
        log.debug("%s %s: %s", request.method, request.url.path, exc)
    else:
        log.warning("%s %s: event store: %s", request.method, request.url.path, describe(exc))
    refusal = StoreUnavailable("The event store does not answer now; nothing was changed. Try again later.",
                               retry_after=STORE_RETRY_AFTER_SECONDS)
    return await domain_error(request, refusal)


async def broker_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("%s %s: broker: %s", request.method, request.url.path, describe(exc))
    refusal = BrokerUnavailable(
        "The broker (Redis) that hands mails to the workers does not answer; try again later. "
        "Timers are kept in the event store: mails already due are sent once it answers.",
        retry_after=BROKER_RETRY_AFTER_SECONDS,
    )
    return await domain_error(request, refusal)


async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error")
    # The server drops the connection after an unhandled error even once the answer is sent:
    # saying so lets a pooled client open a new one instead of failing its next request.
    return refusal(
        InternalError("The request failed unexpectedly; nothing was changed."), request, 500,
        headers={"Connection": "close"},
    )


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, domain_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    for store_error in STORE_ERRORS:
        app.add_exception_handler(store_error, store_unavailable)
    for broker_error in BROKER_ERRORS:
        app.add_exception_handler(broker_error, broker_unavailable)
    app.add_exception_handler(Exception, unexpected_error)


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {
        "description": description,
        "content": {
            PROBLEM_JSON: {
                "example": {
                    "type": f"urn:lifecycle:problem:{code.lower().replace('_', '-')}",
                    "title": title,
                    "status": status,
                    "detail": title,
                    "code": code,
                    "message_ja": message_ja,
                }
            }
        },
    }
    for status, description, code, title, message_ja in [
        (401, "No credentials, or unknown, expired or revoked ones", "UNAUTHENTICATED",
         "Credentials are missing, unknown, expired or revoked", "認証が必要です。ログインし直すか、有効なAPIキーを指定してください。"),
        (403, "The caller's roles do not cover the route", "FORBIDDEN", "The caller may not do this", "この操作を行う権限がありません。"),
        (404, "An unknown resource in the path", "SITE_NOT_FOUND", "Unknown installation site", "設置先拠点が見つかりません。"),
        (409, "Conflicts with recorded state", "UNIT_ALREADY_REGISTERED", "The unit is already covered", "このシリアル番号の製品は既に登録されています。"),
        (422, "Input that breaks a rule or the schema", "SERIAL_NOT_FOUND", "Unknown serial number", "該当のシリアルは存在しません。"),
    ]
}
