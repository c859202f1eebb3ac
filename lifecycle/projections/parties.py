"""The parties of each contract (SPEC Q-1, seed p.21): installation companies, registrant
accounts, sites and fault contacts, as the call center and the inquiry check read them."""

from __future__ import annotations

from typing import Any

from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.persistence import Tracking

from lifecycle.aggregates.accounts import Account
from lifecycle.aggregates.contract import Contract
from lifecycle.domain.addresses import ADDRESS_FIELDS
from lifecycle.domain.privacy import ERASED, PERSONAL_FIELDS, SubjectKind
from lifecycle.projections.engine.projection import ReadModelProjection, topics_of
from lifecycle.projections.engine.views import Table

ADDRESS = {name: "text" for name in ADDRESS_FIELDS}

CONTRACTS = Table(
    "contracts",
    {"contract_id": "text", "contract_number": "text", "name": "text", "account_id": "text"},
    key="contract_id",
    indexes=(("contract_number",), ("account_id",)),  # a customer's companies (GET /v1/companies)
)
ACCOUNTS = Table(
    "accounts",
    {"account_id": "text", "email": "text", "name": "text", "company_name": "text", "phone": "text"},
    key="account_id",
)
SITES = Table(
    "sites",
    {
        "site_id": "text",
        "contract_id": "text",
        "name": "text",
        **ADDRESS,
        "person": "text",
        "phone": "text",
        "email": "text",
    },
    key="site_id",
    indexes=(("contract_id",),),
)
CONTACTS = Table(
    "contacts",
    {
        "contact_id": "text",
        "site_id": "text",
        "contract_id": "text",
        "company": "text",
        **ADDRESS,
        "person": "text",
        "phone": "text",
        "mail1": "text",
        "mail2": "text",
    },
    key="contact_id",
    indexes=(("site_id",), ("contract_id",)),
)


def _columns_of(changes: dict[str, Any], table: Table) -> dict[str, Any]:
    """The changes a row of `table` takes: its columns but its key."""
    return {k: v for k, v in changes.items() if k in table.columns and k != table.key}


def _fields(event: Any, table: Table) -> dict[str, Any]:
    return {name: getattr(event, name) for name in table.columns if hasattr(event, name)}


class Parties(ReadModelProjection):
    name = "parties"
    tables = (CONTRACTS, ACCOUNTS, SITES, CONTACTS)
    topics = topics_of(
        Contract.CompanyRegistered,
        Contract.CompanyRenamed,
        Contract.SiteAdded,
        Contract.SiteChanged,
        Contract.FaultContactAdded,
        Contract.ContactChanged,
        Account.SignedUp,
        Account.ProfileChanged,
        Account.EmailChanged,
        Account.PersonalDataErased,
        Contract.PersonalDataErased,
    )

    def _change(self, table: str, key: str, changes: dict[str, Any]) -> None:
        """Writes `changes` into the row of `table` under `key`, when there is one."""
        row = self.rows.get(table, key)
        if row is not None:
            row.update(changes)
            self.rows.put(table, row)

    @singledispatchmethod
    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        """Other events do not change the parties."""

    @process_event.register(Contract.CompanyRegistered)
    def _company_registered(self, e: Contract.CompanyRegistered, _: Tracking) -> None:
        self.rows.put(
            "contracts",
            {
                "contract_id": str(e.originator_id),
                "contract_number": e.contract_number,
                "name": e.name,
                "account_id": str(e.account_id),
            },
        )

    @process_event.register(Contract.CompanyRenamed)
    def _company_renamed(self, e: Contract.CompanyRenamed, _: Tracking) -> None:
        self._change("contracts", str(e.originator_id), {"name": e.name})

    @process_event.register(Contract.SiteAdded)
    def _site_added(self, e: Contract.SiteAdded, _: Tracking) -> None:
        self.rows.put(
            "sites", {**_fields(e.site, SITES), "site_id": str(e.site.site_id), "contract_id": str(e.originator_id)}
        )

    @process_event.register(Contract.SiteChanged)
    def _site_changed(self, e: Contract.SiteChanged, _: Tracking) -> None:
        self._change("sites", str(e.site_id), _columns_of(e.changes, SITES))

    @process_event.register(Contract.FaultContactAdded)
    def _contact_added(self, e: Contract.FaultContactAdded, _: Tracking) -> None:
        self.rows.put(
            "contacts",
            {
                **_fields(e.contact, CONTACTS),
                "contact_id": str(e.contact.contact_id),
                "site_id": str(e.contact.site_id),
                "contract_id": str(e.originator_id),
            },
        )

    @process_event.register(Contract.ContactChanged)
    def _contact_changed(self, e: Contract.ContactChanged, _: Tracking) -> None:
        self._change("contacts", str(e.contact_id), _columns_of(e.changes, CONTACTS))

    @process_event.register(Account.SignedUp)
    def _signed_up(self, e: Account.SignedUp, _: Tracking) -> None:
        self.rows.put("accounts", {**_fields(e, ACCOUNTS), "account_id": str(e.originator_id)})

    @process_event.register(Account.EmailChanged)
    def _email_changed(self, e: Account.EmailChanged, _: Tracking) -> None:
        """A-3, confirmed by the new address."""
        self._change("accounts", str(e.originator_id), {"email": e.email})

    @process_event.register(Account.ProfileChanged)
    def _profile_changed(self, e: Account.ProfileChanged, _: Tracking) -> None:
        self._change("accounts", str(e.originator_id), _columns_of(e.changes, ACCOUNTS))

    # --- personal data forgotten (docs/privacy.md): the fields show the marker ------------

    @process_event.register(Account.PersonalDataErased)
    def _account_erased(self, e: Account.PersonalDataErased, _: Tracking) -> None:
        self._change("accounts", str(e.originator_id), dict.fromkeys(PERSONAL_FIELDS[SubjectKind.ACCOUNT], ERASED))

    @process_event.register(Contract.PersonalDataErased)
    def _person_erased(self, e: Contract.PersonalDataErased, _: Tracking) -> None:
        kind = SubjectKind(e.subject_kind)
        table = "sites" if kind is SubjectKind.SITE_PERSON else "contacts"
        self._change(table, str(e.subject_id), dict.fromkeys(PERSONAL_FIELDS[kind], ERASED))
