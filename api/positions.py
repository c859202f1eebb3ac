"""Read-your-writes over HTTP: every command's response carries the log position its save
reached in the `X-Log-Position` header; reads take `min_position` and wait for it."""

from __future__ import annotations

from typing import Any

from api.request_context import HttpMiddleware
from lifecycle.application.positions import collect_positions

LOG_POSITION_HEADER = "X-Log-Position"


class LogPositionHeader(HttpMiddleware):
    """ASGI middleware: answers the last position the request's commands reached."""

    async def http(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        reached = collect_positions()

        async def send_with_position(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and reached:
                headers = [*message.get("headers", []), (LOG_POSITION_HEADER.lower().encode(), str(max(reached)).encode())]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_position)
