"""The FastAPI application: routes, problem handlers and the lifecycle application."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.positions import LogPositionHeader
from api.problems import install_problem_handlers
from api.routes import accounts, admin, companies, contracts, postal_codes, registrations, shipments
from api.routes import dashboards, health, support_desk
from lifecycle.bootstrap import bootstrap
from lifecycle.clock import Clock
from lifecycle.settings import Settings
from lifecycle.startup import log_start


def create_app(settings: Settings | None = None, *, clock: Clock | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(api: FastAPI) -> AsyncIterator[None]:
        log_start(settings, f"serve (process {os.getpid()})")
        runtime = bootstrap(settings, clock=clock)
        api.state.runtime = runtime
        api.state.application = runtime.application
        runtime.start()
        try:
            yield
        finally:
            runtime.stop()

    api = FastAPI(
        title="Support contract lifecycle",
        version="1.0.0",
        description=(
            "Event-sourced lifecycle of hardware support contracts: shipment history, accounts, "
            "installation sites, ticket and bundle registrations, renewals and their history. "
            "Errors are application/problem+json with a stable `code` and `message_ja`. "
            "Every POST accepts an `Idempotency-Key` header."
        ),
        lifespan=lifespan,
    )
    install_problem_handlers(api)
    api.add_middleware(LogPositionHeader)
    for module in (shipments, accounts, companies, registrations, contracts, postal_codes):
        api.include_router(module.router)
    for module in (support_desk, dashboards, health):
        api.include_router(module.router)
    api.include_router(admin.router)
    if settings.allow_clock_override:
        api.include_router(admin.clock_override)
    return api
