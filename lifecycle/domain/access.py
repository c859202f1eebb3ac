"""Who may do what, and who did it: the roles of API keys, the caller of a request (an API
key, a customer's account, or the service itself), and the request's context that every
event records (its actor and request id), as the eventsourcing library's content-management
example does with a context variable."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Role(str, Enum):
    """What an internal service's API key may do (SPEC 4)."""

    REFERENCE_DATA = "reference-data"  # shipments and tickets
    REGISTRATIONS = "registrations"  # companies, sites, contacts, registrations, renewals, on behalf of any customer
    CALLCENTER = "callcenter"  # lookups, entitlements, the Q-1 inquiry check
    AUDIT = "audit"  # history, as-of views
    DASHBOARDS = "dashboards"  # dashboards, their exports, metrics
    ADMIN = "admin"  # notifications admin, API keys
    EVENTS = "events"  # the event feed (GET /v1/events): every event of the log, in order


@dataclass(frozen=True)
class Actor:
    """Who caused an event: an API key (by id and name), a customer's account, or the
    service itself (a worker recording a mail, an operator's command line)."""

    kind: str  # "api_key" | "account" | "system"
    id: str
    name: str | None = None
    # "support": the vendor's staff acting for a customer on what only the customer may do
    # (its login ID), recorded as such on the event.
    capacity: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "id": self.id,
            **({"name": self.name} if self.name else {}),
            **({"capacity": self.capacity} if self.capacity else {}),
        }


@dataclass(frozen=True)
class Caller:
    """The authenticated caller of a request: an API key with its roles, or a customer."""

    actor: Actor
    roles: frozenset[Role] = frozenset()
    account_id: str | None = None  # set for a customer's session
    session_id: str | None = None

    @property
    def is_customer(self) -> bool:
        return self.account_id is not None

    def may(self, roles: frozenset[Role]) -> bool:
        return bool(self.roles & roles)

    def is_owner_of(self, account_id: object) -> bool:
        return self.is_customer and self.account_id == str(account_id)

    def may_change_login_of(self, account_id: object) -> bool:
        """An account's login ID (its e-mail) and password change only through its owner's
        session, or by the vendor's support (an API key with a role of LOGIN_SUPPORT_ROLES)."""
        return self.is_owner_of(account_id) or (not self.is_customer and self.may(LOGIN_SUPPORT_ROLES))


# Who besides the owner may change an account's login ID: support, with the admin role.
LOGIN_SUPPORT_ROLES = frozenset({Role.ADMIN})


@dataclass
class RequestContext:
    """Mutable, so that what the request's dependencies learn (the caller) reaches the
    handler's thread, which runs in a copy of the request's context."""

    request_id: str | None = None
    actor: Actor | None = None
    extra: dict[str, Any] = field(default_factory=dict)


_context: ContextVar[RequestContext | None] = ContextVar("request_context", default=None)


def begin_request(request_id: str) -> tuple[RequestContext, Token[RequestContext | None]]:
    context = RequestContext(request_id=request_id)
    return context, _context.set(context)


def reset_request(token: Token[RequestContext | None]) -> None:
    _context.reset(token)


def current_context() -> RequestContext | None:
    return _context.get()


def current_actor() -> dict[str, Any] | None:
    context = _context.get()
    return context.actor.as_dict() if context is not None and context.actor is not None else None


def current_request_id() -> str | None:
    context = _context.get()
    return context.request_id if context is not None else None


@contextmanager
def as_support() -> Iterator[None]:
    """The events made inside are recorded with the request's actor acting as support."""
    context = _context.get()
    if context is None or context.actor is None:
        yield
        return
    actor = context.actor
    context.actor = Actor(actor.kind, actor.id, actor.name, capacity="support")
    try:
        yield
    finally:
        context.actor = actor


@contextmanager
def acting_as(actor: Actor, request_id: str | None = None) -> Iterator[RequestContext]:
    """Work done outside a request (a worker, the command line) records this actor."""
    token = _context.set(RequestContext(request_id=request_id, actor=actor))
    try:
        yield _context.get()  # type: ignore[misc]
    finally:
        _context.reset(token)


SYSTEM_MAILER = Actor("system", "mailer", "mail sender")
SYSTEM_CLI = Actor("system", "cli", "lifecycle command line")
