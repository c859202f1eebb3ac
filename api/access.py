"""Who may call each route: one table, `POLICIES`, names the policy of every route, and each
router's route class (`PolicyRoute`) puts that policy in front of the route as a FastAPI
dependency. A route missing from the table cannot be declared (the app does not start).

A policy authenticates the bearer token (an API key or a customer's session), records the
caller in the request's context (every event then names it), and decides:
- no credentials, or unknown ones: 401 UNAUTHENTICATED with WWW-Authenticate;
- an API key without one of the route's roles, or a customer on a route for services: 403;
- a customer naming another customer's resource: the route's own 404, as if it did not exist.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

import fastapi.routing
from fastapi import Depends, FastAPI, Request
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from api.deps import client_address
from api.problems import problem_responses
from lifecycle.aggregates.bulk_job import BulkJob
from lifecycle.application import LifecycleApplication
from lifecycle.domain.access import Caller, Role, current_context
from lifecycle.domain.errors import (
    AccountNotFound,
    BulkJobNotFound,
    CompanyNotFound,
    ContractNotFound,
    DomainError,
    FaultContactNotFound,
    Forbidden,
    NotRegistered,
    Refusal,
    SiteNotFound,
    TicketNotRegistered,
    Unauthenticated,
)

BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="An internal service's API key (`lk_…`, from `lifecycle keys create`) or a customer's "
    "session token (`ls_…`, from `POST /v1/sessions`).",
)

# Who owns a resource named in the request: raises the route's own 404 when it is not the
# customer's (and does nothing when it does not exist: the route answers that itself).
Owner = Callable[[LifecycleApplication, dict[str, str], Any, str], None]


def _uuid(text: str | None) -> UUID | None:
    try:
        return UUID(str(text))
    except ValueError:
        return None


def _check(contract: Any, account_id: str, refusal: DomainError) -> None:
    """Another customer's contract: the route's own 404 (an unknown one the route answers)."""
    if contract is not None and str(contract.account_id) != account_id:
        raise refusal


def owns_company(app: LifecycleApplication, path: dict[str, str], body: Any, account_id: str) -> None:
    company_id = _uuid(path.get("company_id"))
    contract = app.companies.find(company_id) if company_id else None
    _check(contract, account_id, CompanyNotFound(f"Installation company {company_id} is not registered."))


def owns_site(app: LifecycleApplication, path: dict[str, str], body: Any, account_id: str) -> None:
    site_id = _uuid(path.get("site_id"))
    contract = app.companies.find_by_site(site_id) if site_id else None
    _check(contract, account_id, SiteNotFound(f"Site {site_id} is not registered."))


def owns_contact(app: LifecycleApplication, path: dict[str, str], body: Any, account_id: str) -> None:
    contact_id = _uuid(path.get("contact_id"))
    contract = app.companies.find_by_contact(contact_id) if contact_id else None
    _check(contract, account_id, FaultContactNotFound(f"Fault contact {contact_id} is not registered."))


def is_own_account(app: LifecycleApplication, path: dict[str, str], body: Any, account_id: str) -> None:
    wanted = _uuid(path.get("account_id"))
    if wanted is not None and str(wanted) != account_id:
        raise AccountNotFound(f"Account {wanted} is not registered.")


def owns_registration(app: LifecycleApplication, path: dict[str, str], body: Any, account_id: str) -> None:
    """By the unit's serial: another customer's unit looks unregistered."""
    contract = app.registrations.contract_covering(path.get("serial", ""))
    _check(contract, account_id, NotRegistered(
        f"Unit {path.get('serial')} is not registered.", kind=Refusal.NOT_FOUND))


def owns_ticket_registration(app: LifecycleApplication, path: dict[str, str], body: Any, account_id: str) -> None:
    contract = app.registrations.contract_using_ticket(path.get("ticket_id", ""))
    _check(contract, account_id, TicketNotRegistered(
        f"No registration uses ticket {path.get('ticket_id')}."))


def owns_contract(app: LifecycleApplication, path: dict[str, str], body: Any, account_id: str) -> None:
    contract = app.companies.find_by_number(path.get("contract_number", ""))
    _check(contract, account_id, ContractNotFound(
        f"Contract {path.get('contract_number')} is not registered.", kind=Refusal.NOT_FOUND))


def owns_bulk_job(app: LifecycleApplication, path: dict[str, str], body: Any, account_id: str) -> None:
    """A bulk job is its company's customer's: another customer's job looks unknown."""
    job_id = _uuid(path.get("job_id"))
    job = app.load(job_id, BulkJob) if job_id else None
    contract = app.companies.find(job.company_id) if job is not None else None
    _check(contract, account_id, BulkJobNotFound(f"Bulk registration job {job_id} is not known."))


def names_own_account(app: LifecycleApplication, path: dict[str, str], body: Any, account_id: str) -> None:
    """A company is registered for the customer's own account (an unknown one is refused
    the same way, with 422 ACCOUNT_NOT_FOUND)."""
    given = body.get("account_id") if isinstance(body, dict) else None
    if given is not None and _uuid(given) is not None and str(_uuid(given)) != account_id:
        raise AccountNotFound(f"Account {given} is not registered.", kind=Refusal.INVALID)


@dataclass(frozen=True)
class Policy:
    """Who may call a route: anyone (`open`), API keys with one of `roles`, and customers
    (`customers`) for their own resources as `owner` decides."""

    roles: frozenset[Role] = frozenset()
    customers: bool = False
    open: bool = False
    owner: Owner | None = None
    reads_body: bool = False  # the owner looks at the JSON body
    # An open route's answer in full is for API keys with one of these roles; others get the summary.
    details: frozenset[Role] = frozenset()
    note: str = ""  # a rule the route applies inside (shown in docs/security.md)

    def shows_details_to(self, caller: Caller | None) -> bool:
        return caller is not None and not caller.is_customer and caller.may(self.details)

    async def __call__(
        self, request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]
    ) -> Caller | None:
        caller = await self._caller(request, credentials)
        request.state.caller = caller
        if self.open and (caller is None or caller.is_customer):
            # Open to anyone: counted per client address (internal services with a key are not).
            await run_in_threadpool(request.app.state.runtime.doors.knock, client_address(request))
        if caller is None:
            if self.open:
                return None
            raise Unauthenticated("This route needs an API key or a customer's session (Authorization: Bearer …).")
        context = current_context()
        if context is not None:
            context.actor = caller.actor
        if self.open:
            return caller
        if caller.is_customer:
            if not self.customers:
                raise Forbidden("A customer's session cannot call this route.")
            if self.owner is not None:
                body = await _json_or_none(request) if self.reads_body else None
                application = request.app.state.runtime.application
                path = {k: str(v) for k, v in request.path_params.items()}
                await run_in_threadpool(self.owner, application, path, body, caller.account_id)
            return caller
        if not caller.may(self.roles):
            needed = ", ".join(sorted(role.value for role in self.roles)) or "none"
            raise Forbidden(f"This API key's roles do not cover this route (it needs one of: {needed}).")
        return caller

    async def _caller(self, request: Request, credentials: HTTPAuthorizationCredentials | None) -> Caller | None:
        if credentials is None:
            return None
        access = request.app.state.runtime.access
        try:
            return await run_in_threadpool(access.authenticate, credentials.credentials)
        except Exception:
            # An open route needs no credentials: a stale token does not stop sign-up or login,
            # and the health routes answer while the store that holds the keys is away.
            if self.open:
                return None
            raise


async def _json_or_none(request: Request) -> Any:
    """The body as JSON for an owner check; a body that is not JSON names nothing, and the
    route's own parsing then refuses it (422), as it does for anyone."""
    try:
        return await request.json() if await request.body() else None
    except ValueError:
        return None


def open_route(*, details_for: tuple[Role, ...] = ()) -> Policy:
    return Policy(open=True, details=frozenset(details_for))


def services(*roles: Role, note: str = "") -> Policy:
    return Policy(roles=frozenset(roles), note=note)


def customers_and(*roles: Role, owner: Owner | None = None, reads_body: bool = False, note: str = "") -> Policy:
    return Policy(roles=frozenset(roles), customers=True, owner=owner, reads_body=reads_body, note=note)


def customers_only() -> Policy:
    return Policy(customers=True)


R = Role
REGISTRATIONS = R.REGISTRATIONS
EARLIER_AS_A_COUNT = "a customer: another company's earlier registrations as a count, without ids"
AS_A_CUSTOMER = "a customer: who acted as customer, staff or a service role; no key ids or names, no internal notes"

# Every route of the API and who may call it.
POLICIES: dict[tuple[str, str], Policy] = {
    # open: what a customer needs before logging in, the postal-code lookup, health
    # health: anyone learns whether the service is up; the details (store, broker, SMTP, lag,
    # leader, process) are for operators and dashboards
    ("GET", "/v1/health"): open_route(details_for=(R.ADMIN, R.DASHBOARDS)),
    ("GET", "/v1/health/ready"): open_route(details_for=(R.ADMIN, R.DASHBOARDS)),
    ("GET", "/v1/postal-codes/{code}"): open_route(),
    ("POST", "/v1/accounts"): open_route(),
    ("POST", "/v1/accounts/verify"): open_route(),
    ("POST", "/v1/accounts/email/confirm"): open_route(),
    ("POST", "/v1/accounts/password-reset"): open_route(),
    ("POST", "/v1/accounts/password-reset/confirm"): open_route(),
    ("POST", "/v1/sessions"): open_route(),
    # a customer's own session and account
    ("DELETE", "/v1/sessions/current"): customers_only(),
    ("GET", "/v1/accounts/me"): customers_only(),
    ("GET", "/v1/accounts/me/personal-data"): customers_only(),
    ("GET", "/v1/accounts/{account_id}"): customers_and(REGISTRATIONS, R.ADMIN, owner=is_own_account),
    # the login e-mail only by the owner's session or admin (support): Caller.may_change_login_of
    ("PATCH", "/v1/accounts/{account_id}"): customers_and(
        REGISTRATIONS, R.ADMIN, owner=is_own_account,
        note="the login e-mail only by the owner's session or admin (support, recorded as such)",
    ),
    # reference data
    ("POST", "/v1/shipments"): services(R.REFERENCE_DATA),
    ("POST", "/v1/tickets"): services(R.REFERENCE_DATA),
    # companies, sites, fault contacts (Q-2: a customer only its own)
    ("GET", "/v1/companies"): customers_and(REGISTRATIONS),
    ("POST", "/v1/companies"): customers_and(REGISTRATIONS, owner=names_own_account, reads_body=True),
    ("GET", "/v1/companies/{company_id}"): customers_and(REGISTRATIONS, owner=owns_company),
    ("PATCH", "/v1/companies/{company_id}"): customers_and(REGISTRATIONS, owner=owns_company),
    ("POST", "/v1/companies/{company_id}/sites"): customers_and(REGISTRATIONS, owner=owns_company),
    ("GET", "/v1/sites/{site_id}"): customers_and(REGISTRATIONS, owner=owns_site),
    ("PATCH", "/v1/sites/{site_id}"): customers_and(REGISTRATIONS, owner=owns_site),
    ("POST", "/v1/sites/{site_id}/fault-contacts"): customers_and(REGISTRATIONS, owner=owns_site),
    ("GET", "/v1/fault-contacts/{contact_id}"): customers_and(REGISTRATIONS, owner=owns_contact),
    ("PATCH", "/v1/fault-contacts/{contact_id}"): customers_and(REGISTRATIONS, owner=owns_contact),
    # registrations, bundles, renewals and their reads
    ("POST", "/v1/sites/{site_id}/registrations"): customers_and(REGISTRATIONS, owner=owns_site),
    ("POST", "/v1/sites/{site_id}/bundles"): customers_and(REGISTRATIONS, owner=owns_site),
    ("GET", "/v1/sites/{site_id}/registrations"): customers_and(REGISTRATIONS, owner=owns_site),
    ("POST", "/v1/registrations/{serial}/renewals"): customers_and(REGISTRATIONS, owner=owns_registration),
    ("GET", "/v1/registrations/{serial}"): customers_and(
        REGISTRATIONS, R.CALLCENTER, owner=owns_registration, note=EARLIER_AS_A_COUNT
    ),
    ("POST", "/v1/registrations/{serial}/service-upgrades"): services(REGISTRATIONS),  # Q12: a sales action
    # bulk registration from Excel sheets (K-1): a customer for its own company
    ("GET", "/v1/bulk/template.xlsx"): customers_and(REGISTRATIONS),
    ("POST", "/v1/companies/{company_id}/bulk"): customers_and(REGISTRATIONS, owner=owns_company),
    ("GET", "/v1/bulk/{job_id}"): customers_and(REGISTRATIONS, owner=owns_bulk_job),
    ("GET", "/v1/bulk/{job_id}/result.xlsx"): customers_and(REGISTRATIONS, owner=owns_bulk_job),
    # the call center
    ("GET", "/v1/tickets/{ticket_id}/registration"): customers_and(
        REGISTRATIONS, R.CALLCENTER, owner=owns_ticket_registration, note=EARLIER_AS_A_COUNT
    ),
    ("POST", "/v1/entitlements/check"): services(R.CALLCENTER),
    ("POST", "/v1/inquiries/check"): services(R.CALLCENTER),  # the call center's alone
    # auditors (and a customer for its own contract)
    ("GET", "/v1/contracts/{contract_number}/history"): customers_and(R.AUDIT, owner=owns_contract, note=AS_A_CUSTOMER),
    ("GET", "/v1/contracts/{contract_number}"): customers_and(R.AUDIT, owner=owns_contract, note=AS_A_CUSTOMER),
    # the log that proves itself (docs/audit.md)
    ("GET", "/v1/audit/checkpoints/latest"): services(R.AUDIT),
    ("GET", "/v1/audit/checkpoints/{tree_size}"): services(R.AUDIT),
    ("GET", "/v1/audit/proofs/inclusion"): services(R.AUDIT),
    ("GET", "/v1/audit/proofs/consistency"): services(R.AUDIT),
    # the event feed, for internal services that follow the log
    ("GET", "/v1/events"): services(R.EVENTS),
    # dashboards
    ("GET", "/v1/dashboards/expiry"): services(R.DASHBOARDS),
    ("GET", "/v1/dashboards/service-in"): services(R.DASHBOARDS),
    ("GET", "/metrics"): services(R.DASHBOARDS),
    # operating the service
    ("GET", "/v1/admin/notifications/failed"): services(R.ADMIN),
    ("GET", "/v1/admin/notifications/{notification_id}"): services(R.ADMIN),
    ("POST", "/v1/admin/notifications/{notification_id}/resend"): services(R.ADMIN),
    ("POST", "/v1/admin/timers/run"): services(R.ADMIN),  # the test aid, when enabled
    ("GET", "/v1/admin/api-keys"): services(R.ADMIN),
    ("POST", "/v1/admin/personal-data/forget"): services(R.ADMIN),
    ("GET", "/v1/admin/personal-data/{kind}/{subject_id}"): services(R.ADMIN),
    ("POST", "/v1/admin/api-keys"): services(R.ADMIN),
    ("DELETE", "/v1/admin/api-keys/{key}"): services(R.ADMIN),
}

def policy_table() -> str:
    """POLICIES as the Markdown table of docs/security.md (a test keeps the two the same)."""
    lines = ["| method | path | API key roles | customer's session | rule inside |", "|---|---|---|---|---|"]
    for (method, path), policy in POLICIES.items():
        if policy.open:
            roles = "anyone" + (f" (details: {', '.join(sorted(r.value for r in policy.details))})"
                                if policy.details else "")
            customer = "anyone"
        else:
            roles = ", ".join(sorted(role.value for role in policy.roles)) or "none"
            customer = ("its own" if policy.owner is not None else "yes") if policy.customers else "no"
        lines.append(f"| {method} | `{path}` | {roles} | {customer} | {policy.note} |")
    return "\n".join(lines)


# Where the Swagger UI and ReDoc files that /docs and /redoc load are served (fastapi-offline).
DOCS_ASSETS = "/docs/assets"
# The portal's stylesheet and script (api.portal), open to all like the docs' files.
PORTAL_STATIC = "/portal/static"

# Not routes of the API: the OpenAPI document, its two pages and the files they load, served by
# FastAPI and fastapi-offline themselves (not through PolicyRoute), open to all.
OPEN_DOCUMENTS = ("/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", DOCS_ASSETS, PORTAL_STATIC)


class MissingPolicy(LookupError):
    pass


def policy_for(method: str, path: str) -> Policy:
    try:
        return POLICIES[(method, path)]
    except KeyError:
        raise MissingPolicy(f"{method} {path} has no entry in api.access.POLICIES") from None


def check_every_route_has_a_policy(app: FastAPI) -> None:
    """Raises MissingPolicy for a route of the app that has no policy: one that was not declared
    through PolicyRoute (a plain route, a mount) and is not an open document. PolicyRoute checks
    the routes of the routers; this catches what is added to the app beside them."""
    for route, path in _every_route(app):
        if isinstance(route, PolicyRoute) or getattr(route, "portal_policy", False):
            continue  # the portal's pages check their session themselves (api.portal.web)
        if path not in OPEN_DOCUMENTS:
            raise MissingPolicy(f"{path} is neither a route of api.access.POLICIES nor one of its OPEN_DOCUMENTS")


def _every_route(app: FastAPI) -> list[tuple[Any, str | None]]:
    """Each route of the app with its path, the included routers' too: newer FastAPI keeps an
    included router as one entry of `app.routes` (iter_route_contexts opens it), older copied
    its routes in."""
    iterate = getattr(fastapi.routing, "iter_route_contexts", None)
    if iterate is None:
        return [(route, getattr(route, "path", None)) for route in app.routes]
    return [(context.original_route, context.path) for context in iterate(app.routes)]


class PolicyRoute(APIRoute):
    """A route with its policy from the table in front of it."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        methods = {m.upper() for m in (kwargs.get("methods") or ["GET"])} - {"HEAD"}
        policies = {policy_for(method, path) for method in methods}
        kwargs["dependencies"] = [*(Depends(policy) for policy in policies), *(kwargs.get("dependencies") or [])]
        if all(policy.open for policy in policies):
            # Credentials are optional here (a customer's token names the actor): the empty
            # requirement beside the bearer one says so (OpenAPI's optional security).
            kwargs["openapi_extra"] = {"security": [{}], **(kwargs.get("openapi_extra") or {})}
            # Counted per client address (OpenDoors.knock): 429 with Retry-After beyond.
            kwargs["responses"] = {**problem_responses(429), **(kwargs.get("responses") or {})}
        super().__init__(path, _on_the_thread_pool(endpoint), **kwargs)


def _on_the_thread_pool(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """A plain `def` route as a coroutine that runs it on the thread pool. FastAPI does the
    same for a plain route, then hands the answer's validation back to the thread pool too:
    two hand-offs a request instead of one. The answer is the same; it is validated and
    written on the event loop (pydantic's core, a fraction of the hand-off's cost)."""
    if inspect.iscoroutinefunction(endpoint) or inspect.isgeneratorfunction(endpoint):
        return endpoint

    @functools.wraps(endpoint)
    async def on_the_thread_pool(*args: Any, **kwargs: Any) -> Any:
        return await run_in_threadpool(endpoint, *args, **kwargs)

    return on_the_thread_pool


async def get_caller(request: Request) -> Caller:
    """The caller the route's policy authenticated (routes whose policy admits callers only)."""
    caller = getattr(request.state, "caller", None)
    if caller is None:
        raise Unauthenticated("This route needs credentials.")
    return caller


CallerDep = Annotated[Caller, Depends(get_caller)]
