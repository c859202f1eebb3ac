"""Dependencies as typed aliases: each route takes the service it calls.

They only pick an object off the runtime, so they are `async def` (FastAPI runs a plain `def`
dependency on the thread pool, a hand-off that costs more than the lookup itself), and each
reads it off the request itself rather than through another dependency: FastAPI's work for
each dependency of a request costs more than the lookup too."""

from __future__ import annotations

import hashlib
import json
from operator import attrgetter
from typing import Annotated, Any, Literal

from fastapi import Depends, Header, Query, Request

from api.fields import MAX_POSITION

from lifecycle.application import IdempotencyKey, LifecycleApplication
from lifecycle.application.accounts import Accounts
from lifecycle.application.bulk import BulkImports
from lifecycle.application.companies import Companies
from lifecycle.application.history import ContractHistory
from lifecycle.application.registrations import Registrations
from lifecycle.application.shipments import ShipmentHistory
from lifecycle.bootstrap import Runtime
from lifecycle.mail.admin import NotificationsAdmin
from lifecycle.projections.read_models import ReadAt, ReadModels
from lifecycle.queries.dashboards import Dashboards
from lifecycle.queries.support_desk import SupportDesk


async def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def client_address(request: Request) -> str | None:
    """The client's address, for rate limits and login throttling: the peer's, or behind one
    of LIFECYCLE_TRUSTED_PROXIES the address those proxies put in X-Forwarded-For."""
    peer = request.client.host if request.client else None
    return request.app.state.runtime.client_addresses.of(peer, request.headers.get("x-forwarded-for"))


def counted_client(request: Request) -> str | None:
    """The client address an open route's attempt is counted under: None for an internal
    service calling with an API key (authenticated and accountable, often many customers'
    requests from one address); the limits per address asked about still apply to it."""
    caller = getattr(request.state, "caller", None)
    if caller is not None and not caller.is_customer:
        return None
    return client_address(request)


async def get_application(request: Request) -> LifecycleApplication:
    return request.app.state.application


AppDep = Annotated[LifecycleApplication, Depends(get_application)]


def _part(path: str) -> Any:
    """A dependency answering one part of the running service, named by its attribute path."""
    get = attrgetter(path)

    async def part(request: Request) -> Any:  # async: no thread-pool hand-off for an attribute
        return get(request.app.state.runtime)

    return Depends(part)


AccountsDep = Annotated[Accounts, _part("application.accounts")]
ShipmentsDep = Annotated[ShipmentHistory, _part("application.shipments")]
CompaniesDep = Annotated[Companies, _part("application.companies")]
RegistrationsDep = Annotated[Registrations, _part("application.registrations")]
HistoryDep = Annotated[ContractHistory, _part("application.history")]


async def get_idempotency_key(
    request: Request,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            max_length=255,
            description="A retry with the same key and body returns the first answer and changes nothing.",
        ),
    ] = None,
) -> IdempotencyKey | None:
    if not idempotency_key:
        return None
    body = await request.body()
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, ensure_ascii=False) if body else ""
    except (ValueError, RecursionError):  # not JSON, or nested too deep: fingerprint the bytes
        canonical = body.decode("utf-8", errors="replace")
    # surrogatepass: a lone surrogate (refused by the schema after this) must not fail here.
    text = f"{request.method} {request.url.path}\n{canonical}"
    fingerprint = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    # The route's policy ran first (route dependencies precede the handler's): its caller is known.
    caller = getattr(request.state, "caller", None)
    who = f"{caller.actor.kind}:{caller.actor.id}" if caller is not None else "anonymous"
    route = getattr(request.scope.get("route"), "path", request.url.path)
    return IdempotencyKey(idempotency_key, fingerprint, scope=f"{who} {request.method} {route}")


IdempotencyDep = Annotated[IdempotencyKey | None, Depends(get_idempotency_key)]


BulkDep = Annotated[BulkImports, _part("bulk")]
SupportDeskDep = Annotated[SupportDesk, _part("support_desk")]
DashboardsDep = Annotated[Dashboards, _part("dashboards")]
ReadModelsDep = Annotated[ReadModels, _part("read_models")]
NotificationsDep = Annotated[NotificationsAdmin, _part("notifications.admin")]


async def get_read_at(
    min_position: Annotated[
        int | None,
        Query(
            ge=0,
            le=MAX_POSITION,
            description="Show at least this log position, as answered by a command in its X-Log-Position "
            "header (read-your-writes); 503 READ_MODEL_BEHIND if the read models do not reach it in time.",
        ),
    ] = None,
    consistency: Annotated[
        Literal["strong", "eventual"],
        Query(
            description="strong (default): the answer shows every change committed before the read arrived, "
            "by any process (a bounded wait for the read models). eventual: what the read models show now "
            "(or at least min_position), without waiting: for dashboards that prefer speed.",
        ),
    ] = "strong",
) -> ReadAt:
    return ReadAt(min_position, eventual=consistency == "eventual")


ReadAtDep = Annotated[ReadAt, Depends(get_read_at)]
