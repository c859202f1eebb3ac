"""Each request's context: its id (the caller's `X-Request-ID` when it is a sane token, else
a new one), answered in the response and recorded on every event the request causes, with
the caller its route's policy authenticates (lifecycle.domain.access)."""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from lifecycle.domain.access import begin_request, reset_request

REQUEST_ID_HEADER = "X-Request-ID"
# A caller's id is kept only when it cannot smuggle anything into logs or events.
_SANE_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")

log = logging.getLogger("lifecycle.requests")


class HttpMiddleware:
    """An ASGI middleware for HTTP requests (`http`); anything else (the lifespan) passes
    straight on to the app."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.http(scope, receive, send)

    async def http(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        raise NotImplementedError


class RequestContextMiddleware(HttpMiddleware):
    """ASGI middleware: sets the request's context, answers its id, logs one line per request
    (id, method, route, status, duration; never a body, a token or a query string)."""

    async def http(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        given = next((v for k, v in scope.get("headers", ()) if k == b"x-request-id"), b"").decode("latin-1")
        request_id = given if _SANE_ID.fullmatch(given) else uuid.uuid4().hex
        context, token = begin_request(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", []), (b"x-request-id", request_id.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = getattr(scope.get("route"), "path", None) or "-"  # the template: ids, never addresses
            fields = {
                "request_id": request_id,
                "method": scope.get("method"),
                "route": route,
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                "actor": context.actor.id if context.actor else "-",
            }
            log.info("request %(request_id)s %(method)s %(route)s %(status)d %(duration_ms).1fms actor=%(actor)s",
                     fields, extra=fields)
            reset_request(token)
