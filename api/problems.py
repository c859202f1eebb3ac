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
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException
from starlette.routing import Match, Mount

from api.fields import DATE_OUT_OF_RANGE, INVALID_TEXT
from lifecycle.availability import BrokerDown, EventStoreBusy, EventStoreDown, describe
from lifecycle.domain.errors import (
    BodyTooLarge,
    BrokerUnavailable,
    DateOutOfRange,
    DomainError,
    Forbidden,
    HttpRefusal,
    InternalError,
    InvalidText,
    MalformedForm,
    MalformedJson,
    MethodNotAllowed,
    PathNotFound,
    RateLimited,
    Refusal,
    ResourceNotFound,
    SerialNotFound,
    SiteNotFound,
    StoreUnavailable,
    Unauthenticated,
    UnitAlreadyRegistered,
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
    route = request.scope.get("route")
    if any(e["loc"][:1] == ["path"] for e in errors) and all(
        serving.original_route is not route for serving in _serving_routes(request)
    ):
        # PATCH /v1/accounts/me reached /v1/accounts/{account_id} with the id "me": the URL is
        # another route's, which does not take this method.
        return _method_not_allowed(request)
    if errors and all(e["loc"][:1] == ["path"] for e in errors):
        # A malformed id in the path names no resource.
        return refusal(ResourceNotFound(f"Nothing is found at {request.url.path}."), request, errors=errors)
    return refusal(ValidationFailed(f"Invalid fields: {fields}."), request, errors=errors)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _serving_routes(request: Request) -> list[Any]:
    """The routes whose path matches the URL, the most specific only: /v1/accounts/verify is
    its own route's, not /v1/accounts/{account_id}'s with the id "verify"."""
    scope = {**request.scope, "method": "GET"}  # PARTIAL or FULL: the path matches
    matching = [route for route in iter_route_contexts(request.app.routes) if route.matches(scope)[0] is not Match.NONE]
    fewest = min((len(getattr(route, "param_convertors", {})) for route in matching), default=0)
    return [route for route in matching if len(getattr(route, "param_convertors", {})) == fewest]


def _allowed_methods(request: Request) -> str:
    """Every method some route answers on this URL: a path may have a GET route and a PATCH
    route, and Starlette's own Allow names only the first one it matched. Mounts (the docs'
    files) match every method: their own 405 says what they allow."""
    routes = [route for route in _serving_routes(request) if not isinstance(route, Mount)]
    allowed = [
        method for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes)
    ]
    return ", ".join(allowed)


def _method_not_allowed(request: Request, allow: str = "") -> JSONResponse:
    error = MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}.")
    return refusal(error, request, 405, headers={"Allow": _allowed_methods(request) or allow})


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and isinstance(exc.__cause__, (ValueError, RecursionError)):
        # FastAPI's "error parsing the body": invalid UTF-8 (a ValueError) or JSON nested
        # deeper than the parser goes (RecursionError). Malformed JSON, like any other.
        return refusal(MalformedJson("The request body could not be parsed as JSON (or is not UTF-8)."), request, 422)
    if exc.status_code == 400 and isinstance(exc.__context__, MultiPartException):
        # Starlette's "Invalid multipart data.", "Missing boundary in multipart."…: malformed
        # input like malformed JSON, answered with a code of its own.
        return refusal(MalformedForm(str(exc.detail)), request, 422)
    if exc.status_code == 413:
        # The rest of the body stays unread: the connection cannot carry another request.
        limit = {"limit_bytes": exc.limit} if hasattr(exc, "limit") else {}
        return refusal(BodyTooLarge(str(exc.detail), **limit), request, headers={"Connection": "close"})
    if exc.status_code == 405:
        return _method_not_allowed(request, (exc.headers or {}).get("Allow", ""))
    detail = str(exc.detail)
    error = PathNotFound(detail) if exc.status_code == 404 else HttpRefusal(exc.status_code, detail)
    error.title = detail  # Starlette's words ("Not Found"...) are the title too
    return refusal(error, request, exc.status_code, headers=exc.headers)


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


class ProblemError(BaseModel):
    """One field the schema refused."""

    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """application/problem+json (RFC 9457) with this service's `code` and `message_ja`; some
    refusals add members of their own (`errors`, `limit_bytes`, `retry_after`…)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=["urn:lifecycle:problem:serial-not-found"])
    title: str
    status: int
    detail: str
    instance: str
    code: str = Field(description="Stable: what a client branches on", examples=["SERIAL_NOT_FOUND"])
    message_ja: str
    errors: list[ProblemError] | None = Field(default=None, description="The refused fields (422)")


_PROBLEM_SCHEMAS = models_json_schema([(Problem, "serialization")], ref_template="#/components/schemas/{model}")[1]


def document_problems(app: FastAPI) -> None:
    """Puts the Problem schema the routes' problem responses refer to in the document's
    components (FastAPI adds only the models it answers as application/json)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        document = generate()  # FastAPI's, made once and kept
        document.setdefault("components", {}).setdefault("schemas", {}).update(_PROBLEM_SCHEMAS["$defs"])
        return document

    app.openapi = openapi  # type: ignore[method-assign]


# What each problem status means in the document, with one refusal as its example.
_DOCUMENTED: dict[int, tuple[str, type[DomainError]]] = {
    401: ("No credentials, or unknown, expired or revoked ones", Unauthenticated),
    403: ("The caller's roles do not cover the route", Forbidden),
    404: ("An unknown resource: in the path, or named by a token", SiteNotFound),
    409: ("Conflicts with recorded state", UnitAlreadyRegistered),
    413: ("The request body is over the limit (LIFECYCLE_MAX_BODY_BYTES); the connection is closed", BodyTooLarge),
    422: ("Input that breaks a rule or the schema", SerialNotFound),
    429: ("Too many attempts for this address or from this client (Retry-After)", RateLimited),
    503: ("The event store, or a read model, does not answer in time (Retry-After)", StoreUnavailable),
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of routes that answer these problems, as application/problem+json."""
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        description, example = _DOCUMENTED[status]
        responses[status] = {
            "description": description,
            "content": {
                PROBLEM_JSON: {
                    "schema": {"$ref": "#/components/schemas/Problem"},
                    "example": {
                        "type": f"urn:lifecycle:problem:{example.code.lower().replace('_', '-')}",
                        "title": example.title,
                        "status": status,
                        "detail": example.title,
                        "instance": "/v1/…",
                        "code": example.code,
                        "message_ja": example.message_ja,
                    },
                }
            },
        }
    return responses


# Every router's: any route may be refused these (413 and 503 come before the route itself).
PROBLEM_RESPONSES = problem_responses(401, 403, 404, 409, 413, 422, 503)
