"""The auditor's view of a contract: every event, in order, and its state at any instant."""

from __future__ import annotations

from dataclasses import asdict, is_dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from lifecycle.aggregates.api_keys import ApiKey
from lifecycle.aggregates.contract import Contract
from lifecycle.application.views import registration_view
from lifecycle.domain.access import Role
from lifecycle.domain.dates import TOKYO
from lifecycle.domain.errors import ContractNotFound, Refusal, UnknownEventType

if TYPE_CHECKING:
    from lifecycle.application.app import LifecycleApplication
    from lifecycle.application.companies import Companies

_ENVELOPE = ("originator_id", "originator_version", "timestamp", "originator_topic", "actor", "request_id")


def who(domain_event: Any) -> dict[str, Any]:
    """The event's actor and request id; events recorded before access control have none."""
    return {"actor": getattr(domain_event, "actor", None), "request_id": getattr(domain_event, "request_id", None)}


# Event data that is the vendor's own business, never shown to the customer (Q12's sales note).
INTERNAL_FIELDS: dict[str, frozenset[str]] = {"ServiceLevelUpgraded": frozenset({"reason"})}


class CustomerView:
    """What a customer reading its own contract sees of who acted: itself (`customer`), the
    vendor's staff (`staff`: support with the admin role, an operator's command line), or an
    internal service by its role (`service`, `role`) — never a key's id or name, nor another
    account's; and no internal notes (INTERNAL_FIELDS)."""

    def __init__(self, app: LifecycleApplication, account_id: str) -> None:
        self.app = app
        self.account_id = account_id
        self._key_roles: dict[str, list[str]] = {}

    def actor(self, actor: dict[str, Any] | None) -> dict[str, Any] | None:
        if actor is None:
            return None
        kind = actor.get("kind")
        if kind == "account":
            return {"kind": "customer"} if actor.get("id") == self.account_id else {"kind": "staff"}
        if kind == "system":
            return {"kind": "service", "role": "mail"} if actor.get("id") == "mailer" else {"kind": "staff"}
        roles = self._roles_of(str(actor.get("id")))
        if actor.get("capacity") == "support" or Role.ADMIN.value in roles or not roles:
            return {"kind": "staff"}
        return {"kind": "service", "role": sorted(roles)[0]}

    def _roles_of(self, key_id: str) -> list[str]:
        if key_id not in self._key_roles:
            try:
                key = self.app.load(UUID(key_id), ApiKey)
            except ValueError:
                key = None
            self._key_roles[key_id] = list(key.roles) if key is not None else []
        return self._key_roles[key_id]

    def event(self, shown: dict[str, Any]) -> dict[str, Any]:
        hidden = INTERNAL_FIELDS.get(shown["type"], frozenset())
        own = shown["actor"] is not None and shown["actor"].get("id") == self.account_id
        return {
            **shown,
            "actor": self.actor(shown["actor"]),
            "request_id": shown["request_id"] if own else None,
            "data": {k: v for k, v in shown["data"].items() if k not in hidden},
        }


def plain(value: Any) -> Any:
    """Event data as JSON values."""
    if is_dataclass(value) and not isinstance(value, type):
        return plain(asdict(value))
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    return value


CONTRACT_EVENT_TYPES = sorted(
    name
    for name, value in vars(Contract).items()
    if isinstance(value, type) and issubclass(value, Aggregate.Event) and name not in ("Event", "Created")
)


class ContractHistory:
    """The auditor's view of a contract: every event, in order, and its state at any instant."""

    def __init__(self, app: LifecycleApplication, companies: Companies) -> None:
        self.app = app
        self.companies = companies

    def contract_history(
        self,
        contract_number: str,
        types: list[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
        offset: int = 0,
        *,
        for_customer: str | None = None,
    ) -> dict[str, Any]:
        """Every event of the contract in order; optionally only some types, those recorded
        in [since, until), and one page of them. `for_customer` (an account id): as its
        customer sees it (CustomerView)."""
        unknown = sorted(set(types or ()) - set(CONTRACT_EVENT_TYPES))
        if unknown:
            raise UnknownEventType(
                f"Unknown event types: {', '.join(unknown)}.", unknown=unknown, known=CONTRACT_EVENT_TYPES
            )
        since, until = _aware(since), _aware(until)
        contract = self.companies.contract_by_number(contract_number)
        events = [
            {
                "type": type(domain_event).__name__,
                "version": domain_event.originator_version,
                "timestamp": domain_event.timestamp,
                **who(domain_event),
                "data": plain({k: v for k, v in domain_event.__dict__.items() if k not in _ENVELOPE}),
            }
            for domain_event in self.app.events.get(contract.id)
            if (not types or type(domain_event).__name__ in types)
            and (since is None or domain_event.timestamp >= since)
            and (until is None or domain_event.timestamp < until)
        ]
        page = events[offset : None if limit is None else offset + limit]
        if for_customer is not None:
            view = CustomerView(self.app, for_customer)
            page = [view.event(shown) for shown in page]
        return {
            "contract_number": contract.contract_number,
            "company_id": contract.id,
            "total": len(events),
            "offset": offset,
            "limit": limit,
            "events": page,
        }

    def contract_as_of(
        self, contract_number: str, as_of: datetime | None = None, *, for_customer: str | None = None
    ) -> dict[str, Any]:
        """The contract as it stood at `as_of` (default: now), rebuilt from its events up to
        that instant; statuses as of that instant's date in Tokyo. `for_customer`: who made
        the last change as that customer sees it (CustomerView)."""
        as_of = _aware(as_of)
        contract = self.companies.contract_by_number(contract_number)
        version = contract.version
        last = None  # the event that made the contract what it was at as_of
        if as_of is not None:
            version = 0
            for domain_event in self.app.events.get(contract.id):
                if domain_event.timestamp > as_of:
                    break
                version, last = domain_event.originator_version, domain_event
            if version == 0:
                raise ContractNotFound(
                    f"Contract {contract_number} was not registered yet at {as_of.isoformat()}.",
                    kind=Refusal.NOT_FOUND,
                )
            contract = self.app.repository.get(contract.id, version=version)
        else:
            last = next(iter(self.app.events.get(contract.id, desc=True, limit=1)))
        day = (as_of or self.app.clock.now()).astimezone(TOKYO).date()
        last_change = {"type": type(last).__name__, "version": last.originator_version, "timestamp": last.timestamp,
                       **who(last)}
        if for_customer is not None:
            shown = CustomerView(self.app, for_customer).event({**last_change, "data": {}})
            last_change = {k: v for k, v in shown.items() if k != "data"}
        return {
            "contract_number": contract.contract_number,
            "company_id": contract.id,
            "as_of": as_of,
            "version": version,
            "last_change": last_change,
            "name": contract.name,
            "account_id": contract.account_id,
            "sites": [plain(site) for site in contract.sites.values()],
            "fault_contacts": [plain(c) for c in contract.fault_contacts.values()],
            "registrations": [
                registration_view(contract, r, day, self.app.terms.renewal) for r in contract.registrations.values()
            ],
        }


def _aware(instant: datetime | None) -> datetime | None:
    """Instants carry an offset (SPEC 4); one without is taken as Asia/Tokyo time."""
    if instant is not None and instant.tzinfo is None:
        return instant.replace(tzinfo=TOKYO)
    return instant
