"""Dependencies as typed aliases."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated

from fastapi import Depends, Header, Request

from lifecycle.application import IdempotencyKey, LifecycleApplication


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
