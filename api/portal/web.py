"""The portal's machinery: templates, the session cookie, CSRF, who is logged in, and the
route class that puts all of it in front of every page.

- The session is the API's own (`Access.login` answers an `ls_…` token, `Access.authenticate`
  checks it): the portal keeps that token in an HttpOnly, SameSite=Lax cookie, Secure when
  LIFECYCLE_PORTAL_SECURE_COOKIES is on or the request came over HTTPS. A logout, a password or
  e-mail change ends it as it ends the API's.
- CSRF: a signed double-submit. A random value lives in its own HttpOnly cookie; every form
  carries HMAC(secret, value + session) in a hidden field, and `PortalRoute` refuses a POST
  whose field does not match before the route runs (so nothing changes). No JavaScript needed.
- Ownership: the API's own owner checks (api.access.owns_company, owns_site, owns_contact)
  raise the not-found refusal for another customer's id; `PortalRoute` renders it as the
  not-found page, exactly as for an id that does not exist.
"""

from __future__ import annotations

import hashlib
import logging
import hmac
import secrets
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote
from uuid import UUID

from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from lifecycle.application import LifecycleApplication
from lifecycle.domain.access import Caller, current_context
from lifecycle.domain.errors import DomainError, Refusal, Unauthenticated

log = logging.getLogger(__name__)

PREFIX = "/portal"
SESSION_COOKIE = "portal_session"
CSRF_COOKIE = "portal_csrf"
CSRF_FIELD = "csrf_token"

# Content-Security-Policy of every page: our own script and stylesheet files only, nothing
# inline, no frames, forms post to us alone.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # Confirmation and reset pages carry their token in the URL: never in a Referer.
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

templates = Environment(
    loader=PackageLoader("api.portal", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True)
class PortalConfig:
    secure_cookies: bool
    idle_seconds: int


def portal_config(request: Request) -> PortalConfig:
    return request.app.state.portal


def application(request: Request) -> LifecycleApplication:
    return request.app.state.runtime.application


AppDep = Annotated[LifecycleApplication, Depends(application)]


# --- cookies ------------------------------------------------------------------------------


def _secure(request: Request) -> bool:
    return portal_config(request).secure_cookies or request.url.scheme == "https"


def set_cookie(request: Request, response: Response, name: str, value: str) -> None:
    response.set_cookie(
        name, value, path=PREFIX, httponly=True, samesite="lax", secure=_secure(request)
    )


def clear_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(name, path=PREFIX, httponly=True, samesite="lax", secure=_secure(request))


def start_session(request: Request, response: Response, token: str) -> None:
    """After a login: the session's token in its cookie, and a fresh CSRF value for it."""
    set_cookie(request, response, SESSION_COOKIE, token)
    request.state.session_token = token
    request.state.csrf_value = secrets.token_urlsafe(32)
    set_cookie(request, response, CSRF_COOKIE, request.state.csrf_value)


def end_session(request: Request, response: Response) -> None:
    clear_cookie(request, response, SESSION_COOKIE)
    request.state.session_token = ""


# --- CSRF ---------------------------------------------------------------------------------


def _csrf_value(request: Request) -> str:
    """This browser's CSRF value: its cookie's, or a new one the response will set."""
    value = getattr(request.state, "csrf_value", None) or request.cookies.get(CSRF_COOKIE)
    if not value:
        value = secrets.token_urlsafe(32)
    request.state.csrf_value = value
    return value


def _session_token(request: Request) -> str:
    given = getattr(request.state, "session_token", None)
    return request.cookies.get(SESSION_COOKIE, "") if given is None else given


def csrf_token(request: Request) -> str:
    """The hidden field's value: bound to the CSRF cookie and to the session, so a token from
    before a login, or another browser's, is refused."""
    message = f"portal-csrf:{_csrf_value(request)}:{_session_token(request)}"
    return hmac.new(application(request).secret_key, message.encode(), hashlib.sha256).hexdigest()


class CsrfRefused(Exception):
    pass


async def check_csrf(request: Request) -> None:
    """Every POST of the portal: the form's token must match the cookies it was made for.
    Reads urlencoded and multipart forms alike (the form is parsed once and kept)."""
    if request.method != "POST":
        return
    cookie = request.cookies.get(CSRF_COOKIE)
    form = await request.form()
    given = form.get(CSRF_FIELD)
    if not cookie or not isinstance(given, str):
        raise CsrfRefused()
    message = f"portal-csrf:{cookie}:{request.cookies.get(SESSION_COOKIE, '')}"
    expected = hmac.new(application(request).secret_key, message.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise CsrfRefused()


# --- who is logged in -----------------------------------------------------------------------


class LoginRequired(Exception):
    pass


async def optional_customer(request: Request) -> Caller | None:
    """The logged-in customer, or None. Records the customer as the actor of the request's
    events (the request id is there already)."""
    if hasattr(request.state, "customer"):
        return request.state.customer
    token = request.cookies.get(SESSION_COOKIE)
    caller: Caller | None = None
    if token:
        try:
            found = await run_in_threadpool(request.app.state.runtime.access.authenticate, token)
        except Unauthenticated:
            found = None
        caller = found if found is not None and found.is_customer else None
    request.state.customer = caller
    request.state.caller = caller
    if caller is not None:
        context = current_context()
        if context is not None:
            context.actor = caller.actor
    return caller


async def current_customer(customer: Annotated[Caller | None, Depends(optional_customer)]) -> Caller:
    if customer is None:
        raise LoginRequired()
    return customer


OptionalCustomerDep = Annotated[Caller | None, Depends(optional_customer)]
CustomerDep = Annotated[Caller, Depends(current_customer)]


def account_id_of(customer: Caller) -> UUID:
    return UUID(str(customer.account_id))


def owned(check: Callable[..., None], key: str) -> Callable[..., Coroutine[Any, Any, UUID]]:
    """A dependency: the path's id (`key`), after the API's owner check for it (api.access):
    another customer's id raises the same not-found refusal as an unknown one."""

    async def dependency(request: Request, customer: CustomerDep) -> UUID:
        raw = request.path_params.get(key, "")
        try:
            wanted = UUID(str(raw))
        except ValueError:
            raise NotFound() from None
        await run_in_threadpool(check, application(request), {key: str(wanted)}, None, str(customer.account_id))
        return wanted

    return dependency


class NotFound(Exception):
    pass


# --- rendering ------------------------------------------------------------------------------


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A page: the template with the request, the customer and the CSRF token at hand."""
    customer = getattr(request.state, "customer", None)
    body = templates.get_template(template).render(
        request=request,
        customer=customer,
        csrf_field=CSRF_FIELD,
        csrf_token=csrf_token(request),
        idle_seconds=portal_config(request).idle_seconds,
        **context,
    )
    response = HTMLResponse(body, status_code=status_code, headers=PAGE_HEADERS)
    if request.cookies.get(CSRF_COOKIE) != request.state.csrf_value:
        set_cookie(request, response, CSRF_COOKIE, request.state.csrf_value)
    return response


def redirect(url: str) -> RedirectResponse:
    """After a POST: See Other, so a reload does not post again."""
    return RedirectResponse(url, status_code=303)


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return redirect(f"{PREFIX}/login?next={quote(target, safe='')}")


def safe_next(target: str | None) -> str:
    """Only a path of the portal (no other host, no scheme): an open redirect otherwise."""
    if target and target.startswith(f"{PREFIX}/") and not target.startswith("//") and "\\" not in target:
        return target
    return f"{PREFIX}/"


def not_found_page(request: Request) -> HTMLResponse:
    return render(request, "not_found.html", status_code=404)


def error_page(request: Request, error: DomainError, status_code: int) -> HTMLResponse:
    return render(request, "error.html", status_code=status_code, message=error.message_ja)


class PortalRoute(APIRoute):
    """Every page of the portal: its own policy (the session cookie, checked by the pages that
    need a customer), CSRF on every POST, the security headers, and refusals as pages."""

    portal_policy = True  # api.access.check_every_route_has_a_policy accepts it

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        kwargs["dependencies"] = [Depends(check_csrf), *(kwargs.get("dependencies") or [])]
        kwargs["include_in_schema"] = False  # pages, not the API's operations
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def portal_handler(request: Request) -> Response:
            try:
                response = await handler(request)
            except LoginRequired:
                response = login_redirect(request)
            except CsrfRefused:
                response = render(request, "csrf.html", status_code=403)
            except (NotFound, RequestValidationError):
                response = not_found_page(request)
            except DomainError as error:
                if error.kind is Refusal.NOT_FOUND:
                    response = not_found_page(request)
                elif error.kind is Refusal.UNAUTHENTICATED:
                    response = login_redirect(request)
                else:
                    from api.problems import STATUS_OF

                    response = error_page(request, error, STATUS_OF.get(error.kind, 422))
                    if "retry_after" in error.extra:
                        response.headers["Retry-After"] = str(max(1, int(error.extra["retry_after"])))
            except StarletteHTTPException as error:
                if error.status_code == 404:
                    response = not_found_page(request)
                else:
                    raise
            except Exception as error:  # noqa: BLE001 - a page, never a JSON problem or a bare 500
                response = _failure_page(request, error)
            for name, value in PAGE_HEADERS.items():
                response.headers.setdefault(name, value)
            return response

        return portal_handler


def _failure_page(request: Request, error: Exception) -> Response:
    """The event store or the broker away: 503 with Retry-After, as the API answers; anything
    else: the system-error page (logged), nothing changed."""
    from api.problems import BROKER_ERRORS, BROKER_RETRY_AFTER_SECONDS, STORE_ERRORS, STORE_RETRY_AFTER_SECONDS
    from lifecycle.domain.errors import BrokerUnavailable, InternalError, StoreUnavailable

    if isinstance(error, STORE_ERRORS):
        response = render(request, "error.html", status_code=503, message=StoreUnavailable.message_ja)
        response.headers["Retry-After"] = str(STORE_RETRY_AFTER_SECONDS)
    elif isinstance(error, BROKER_ERRORS):
        response = render(request, "error.html", status_code=503, message=BrokerUnavailable.message_ja)
        response.headers["Retry-After"] = str(BROKER_RETRY_AFTER_SECONDS)
    else:
        log.exception("portal page failed")
        response = render(request, "error.html", status_code=500, message=InternalError.message_ja)
    return response


