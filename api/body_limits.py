"""Request bodies over the limit are refused with 413 BODY_TOO_LARGE before they are read.

A declared Content-Length over the limit is answered at once, without calling the route; a
body without one (chunked) is counted as it streams, and reading stops at the first byte
over the limit. The limit is LIFECYCLE_MAX_BODY_BYTES, except for paths with a limit of
their own (the bulk upload's LIFECYCLE_BULK_MAX_BYTES).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request

from api.problems import refusal
from api.request_context import HttpMiddleware
from lifecycle.domain.errors import BodyTooLarge, DomainError

# POST /v1/companies/{company_id}/bulk: a filled bulk-registration sheet (K-1).
# The portal's 一括登録 form posts the same sheet to /portal/companies/{company_id}/bulk.
BULK_UPLOAD_PATH = re.compile(r"^/(?:v1|portal)/companies/[^/]+/bulk/?$")


class BodyOverLimit(HTTPException):
    """Raised from `receive` once a streamed body passes the limit. An HTTPException, so that
    FastAPI's body parsing passes it on to the problem handlers unchanged."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body is over the limit of {limit} bytes.")
        self.limit = limit


class BodyLimits(HttpMiddleware):
    """ASGI middleware: the outermost one, so nothing reads a body before it is counted."""

    def __init__(
        self, app: Any, max_bytes: int, by_path: Sequence[tuple[re.Pattern[str], int, type[DomainError]]] = ()
    ) -> None:
        super().__init__(app)
        self.max_bytes = max_bytes
        self.by_path = tuple(by_path)  # (path, its limit, the refusal that names it)

    def limit_for(self, path: str) -> tuple[int, type[DomainError]]:
        for pattern, limit, refusal_class in self.by_path:
            if pattern.match(path):
                return limit, refusal_class
        return self.max_bytes, BodyTooLarge

    async def http(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        limit, refusal_class = self.limit_for(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _too_large(scope, receive, send, limit, refusal_class)
            return
        received = 0
        started = False

        async def counting_receive() -> dict[str, Any]:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyOverLimit(limit)
            return message

        async def noting_send(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, noting_send)
        except BodyOverLimit:
            # Read outside the routes' body parsing (which answers it as a problem itself).
            if started:
                raise
            await _too_large(scope, receive, send, limit, refusal_class)


def _content_length(scope: dict[str, Any]) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length itself
    return None


async def _too_large(
    scope: dict[str, Any], receive: Any, send: Any, limit: int, refusal_class: type[DomainError] = BodyTooLarge
) -> None:
    request = Request(scope, receive)
    error = refusal_class(
        f"The request body is over the limit of {limit} bytes.", limit_bytes=limit, limit_mb=max(1, limit // 2**20)
    )
    # The rest of the body stays unread: the connection cannot carry another request.
    if scope["path"].startswith("/portal/"):
        from api.portal.web import error_page  # a page of the portal's, as its other refusals

        response = error_page(request, error, 413)
        response.headers["Connection"] = "close"
    else:
        response = refusal(error, request, headers={"Connection": "close"})
    await response(scope, receive, send)
