"""The FastAPI application: routes, problem handlers and the lifecycle application."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from api.access import DOCS_ASSETS, check_every_route_has_a_policy
from api.body_limits import BULK_UPLOAD_PATH, BodyLimits
from api.portal import install_portal
from api.positions import LogPositionHeader
from api.problems import document_problems, install_problem_handlers
from api.request_context import RequestContextMiddleware
from api.routes import (
    accounts,
    admin,
    audit,
    bulk,
    companies,
    contracts,
    dashboards,
    events,
    health,
    postal_codes,
    registrations,
    sessions,
    shipments,
    support_desk,
)
from lifecycle.bootstrap import bootstrap
from lifecycle.domain.errors import BulkFileTooLarge
from lifecycle.logs import log_start
from lifecycle.ports import Clock
from lifecycle.settings import Settings


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

    # /docs and /redoc load Swagger UI and ReDoc from the files fastapi-offline ships (served
    # under DOCS_ASSETS), not from a CDN: they work on a network with no internet.
    api = FastAPIOffline(
        static_url=DOCS_ASSETS,
        # Swagger UI's default validator badge would send the document's URL to validator.swagger.io.
        swagger_ui_parameters={"validatorUrl": None},
        title="Support contract lifecycle",
        version="1.0.0",
        description=(
            "Event-sourced lifecycle of hardware support contracts: shipment history, accounts, "
            "installation sites, ticket and bundle registrations, renewals and their history. "
            "Errors are application/problem+json with a stable `code` and `message_ja`. "
            "Every POST accepts an `Idempotency-Key` header. "
            "Internal services call with an API key (`Authorization: Bearer lk_…`, made with "
            "`lifecycle keys create NAME --role ROLE`); customers with the token `POST /v1/sessions` answers. "
            "Every answer carries `X-Request-ID` (the caller's, or a new one), recorded on the events it causes."
        ),
        lifespan=lifespan,
    )
    install_problem_handlers(api)
    document_problems(api)
    api.add_middleware(LogPositionHeader)
    api.add_middleware(RequestContextMiddleware)
    # Added last, so outermost: bodies are counted before anything reads them.
    api.add_middleware(
        BodyLimits,
        max_bytes=settings.max_body_bytes,
        # the sheet's limit plus room for the multipart envelope, so a sheet at the limit meets
        # the sheet's own check (413 BULK_FILE_TOO_LARGE)
        by_path=[(BULK_UPLOAD_PATH, settings.bulk_max_bytes + 64 * 1024, BulkFileTooLarge)],
    )
    for module in (sessions, shipments, accounts, companies, registrations, bulk, contracts, audit, events, postal_codes):
        api.include_router(module.router)
    for module in (support_desk, dashboards, health):
        api.include_router(module.router)
    api.include_router(admin.router)
    if settings.allow_clock_override:
        api.include_router(admin.clock_override)
    install_portal(api, settings)  # last: its catch-all answers any other /portal/ address
    check_every_route_has_a_policy(api)
    return api
