"""The customer portal (SPEC 5): the seed's registration site in Japanese, server-rendered
under /portal/ by the API's own process, over the same application services and access
policies (never over HTTP). `install_portal` mounts it on the FastAPI app."""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.staticfiles import StaticFiles

from api.portal.web import PREFIX, PortalConfig, PortalRoute, not_found_page, redirect
from lifecycle.settings import Settings

STATIC_PATH = f"{PREFIX}/static"
STATIC_DIR = Path(__file__).parent / "static"

# The page modules, each exporting `router` (APIRouter(route_class=PortalRoute)), in the order
# their paths are matched.
PAGE_MODULES = ("api.portal.accounts", "api.portal.companies", "api.portal.tickets", "api.portal.bulk")

entrance = APIRouter(route_class=PortalRoute)


@entrance.get("/")
def root() -> object:
    """The service's own address leads to the portal."""
    return redirect(f"{PREFIX}/")


@entrance.get(PREFIX)
def portal_without_slash() -> object:
    return redirect(f"{PREFIX}/")


last_resort = APIRouter(route_class=PortalRoute)


@last_resort.api_route(PREFIX + "/{rest:path}", methods=["GET", "POST"])
def unknown_page(request: Request) -> object:
    """Any other address under /portal/: the not-found page (a POST still needs its CSRF token)."""
    return not_found_page(request)


def install_portal(api: FastAPI, settings: Settings) -> None:
    api.state.portal = PortalConfig(
        secure_cookies=settings.portal_secure_cookies,
        idle_seconds=int(settings.session_idle_minutes * 60),
    )
    api.mount(STATIC_PATH, StaticFiles(directory=STATIC_DIR), name="portal-static")
    api.include_router(entrance)
    for name in PAGE_MODULES:
        api.include_router(import_module(name).router)
    api.include_router(last_resort)
