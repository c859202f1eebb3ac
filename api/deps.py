"""Dependencies as typed aliases."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated

from fastapi import Depends, Header, Query, Request

from lifecycle.application import IdempotencyKey, LifecycleApplication
from lifecycle.projections.dashboards import Dashboards
from lifecycle.projections.lookups import SupportDesk
from lifecycle.projections.system import ReadModels
from workers.notifications import Notifications


def get_application(request: Request) -> LifecycleApplication:
    return request.app.state.application


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
    except ValueError:
        canonical = body.decode("utf-8", errors="replace")
    fingerprint = hashlib.sha256(f"{request.method} {request.url.path}\n{canonical}".encode()).hexdigest()
    return IdempotencyKey(idempotency_key, fingerprint)


AppDep = Annotated[LifecycleApplication, Depends(get_application)]
IdempotencyDep = Annotated[IdempotencyKey | None, Depends(get_idempotency_key)]


def get_support_desk(request: Request) -> SupportDesk:
    return request.app.state.runtime.support_desk


def get_dashboards(request: Request) -> Dashboards:
    return request.app.state.runtime.dashboards


def get_read_models(request: Request) -> ReadModels:
    return request.app.state.runtime.read_models


SupportDeskDep = Annotated[SupportDesk, Depends(get_support_desk)]
DashboardsDep = Annotated[Dashboards, Depends(get_dashboards)]
ReadModelsDep = Annotated[ReadModels, Depends(get_read_models)]
MinPositionQuery = Annotated[
    int | None,
    Query(
        ge=0,
        description="Wait (bounded) until the read models show this log position, as answered by a "
        "command in its X-Log-Position header (read-your-writes); 503 READ_MODEL_BEHIND if they do not in time.",
    ),
]


def get_notifications(request: Request) -> Notifications:
    return request.app.state.runtime.notifications


NotificationsDep = Annotated[Notifications, Depends(get_notifications)]
