"""Installation companies, their sites and fault contacts (S-1…S-5)."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

from lifecycle.aggregates.accounts import Account
from lifecycle.aggregates.contract import Contract, FaultContact, Site
from lifecycle.aggregates.index import Index, contact_key, site_key
from lifecycle.application.commands import Answer, IdempotencyKey
from lifecycle.application.views import company_view, fault_contact_view, site_view
from lifecycle.domain.addresses import normalise_phone, resolve_address
from lifecycle.domain.errors import (
    AccountNotActive,
    AccountNotFound,
    CompanyNotFound,
    ContractNotFound,
    FaultContactNotFound,
    Refusal,
    SiteNotFound,
)

if TYPE_CHECKING:
    from lifecycle.application.app import LifecycleApplication


def new_contract_number() -> str:
    """S-1: `SU` + 8 digits; random, and unique because it is the contract's id."""
    return f"SU{secrets.randbelow(10**8):08d}"


class Companies:
    """Installation companies (contracts), their sites and fault contacts (S-1…S-5)."""

    def __init__(self, app: LifecycleApplication) -> None:
        self.app = app

    # --- loading ----------------------------------------------------------------------

    def find(self, company_id: UUID) -> Contract | None:
        return self.app.load(company_id, Contract)

    def find_by_site(self, site_id: UUID) -> Contract | None:
        contract_id = self.app.indexed(site_key(site_id))
        return self.app.load(contract_id, Contract) if contract_id else None

    def find_by_contact(self, contact_id: UUID) -> Contract | None:
        contract_id = self.app.indexed(contact_key(contact_id))
        return self.app.load(contract_id, Contract) if contract_id else None

    def find_by_number(self, contract_number: str) -> Contract | None:
        return self.app.load(Contract.create_id(contract_number.strip().upper()), Contract)

    def company(self, company_id: UUID) -> Contract:
        contract = self.app.load(company_id, Contract)
        if contract is None:
            raise CompanyNotFound(f"Installation company {company_id} is not registered.")
        return contract

    def contract_by_number(self, contract_number: str) -> Contract:
        contract = self.app.load(Contract.create_id(contract_number.strip().upper()), Contract)
        if contract is None:
            raise ContractNotFound(f"Contract {contract_number} is not registered.")
        return contract

    def contract_of_site(self, site_id: UUID) -> Contract:
        contract_id = self.app.indexed(site_key(site_id))
        if contract_id is None:
            raise SiteNotFound(f"Site {site_id} is not registered.")
        return self.company(contract_id)

    def contract_of_contact(self, contact_id: UUID) -> Contract:
        contract_id = self.app.indexed(contact_key(contact_id))
        if contract_id is None:
            raise FaultContactNotFound(f"Fault contact {contact_id} is not registered.")
        return self.company(contract_id)

    # --- companies --------------------------------------------------------------------

    def register_company(
        self, account_id: UUID, name: str, idempotency: IdempotencyKey | None = None
    ) -> Answer:
        def decide():  # noqa: ANN202
            account = self.app.load(account_id, Account)
            if account is None:
                raise AccountNotFound(f"Account {account_id} is not registered.", kind=Refusal.INVALID)
            if not account.is_active:
                raise AccountNotActive(f"Account {account_id} has not confirmed its e-mail address.")
            contract = Contract(contract_number=new_contract_number(), account_id=account.id, name=name)
            # A number already taken makes the save fail; the retry draws another one.
            return company_view(contract), [contract]

        return self.app.execute(decide, idempotency)

    def rename_company(self, company_id: UUID, name: str, idempotency: IdempotencyKey | None = None) -> Answer:
        def decide():  # noqa: ANN202
            contract = self.company(company_id)
            contract.rename(name)
            return company_view(contract), [contract]

        return self.app.execute(decide, idempotency)

    def get_company(self, company_id: UUID) -> Answer:
        return company_view(self.company(company_id))

    # --- sites ------------------------------------------------------------------------

    def _address(self, fields: dict[str, Any], current: Any = None) -> dict[str, Any]:
        """Postal code, prefecture and city resolved (S-3) and the phone normalised (S-2).
        On an edit, `current` supplies what the change leaves as it was."""
        resolved = dict(fields)
        if {"postal_code", "prefecture", "city"} & fields.keys():
            postal_code = fields.get("postal_code") or current.postal_code
            keeps_code = "postal_code" not in fields
            prefecture = fields.get("prefecture") or (current.prefecture if keeps_code else None)
            city = fields.get("city") or (current.city if keeps_code else None)
            code, prefecture, city = resolve_address(self.app.postal_codes.lookup, postal_code, prefecture, city)
            resolved.update(postal_code=code, prefecture=prefecture, city=city)
        if "phone" in fields:
            resolved["phone"] = normalise_phone(fields["phone"])
        return resolved

    def add_site(self, company_id: UUID, fields: dict[str, Any], idempotency: IdempotencyKey | None = None) -> Answer:
        def decide():  # noqa: ANN202
            contract = self.company(company_id)
            site = Site(site_id=uuid4(), **self._address(fields))
            contract.add_site(site)
            answer = site_view(contract, site)
            return answer, [contract, Index(site_key(site.site_id), contract.id)]

        return self.app.execute(decide, idempotency)

    def change_site(self, site_id: UUID, changes: dict[str, Any], idempotency: IdempotencyKey | None = None) -> Answer:
        def decide():  # noqa: ANN202
            contract = self.contract_of_site(site_id)
            contract.change_site(site_id, self._address(changes, contract.site(site_id)))
            return site_view(contract, contract.site(site_id)), [contract]

        return self.app.execute(decide, idempotency)

    def get_site(self, site_id: UUID) -> Answer:
        contract = self.contract_of_site(site_id)
        return site_view(contract, contract.site(site_id))

    # --- fault contacts ---------------------------------------------------------------

    def add_fault_contact(
        self, site_id: UUID, fields: dict[str, Any], idempotency: IdempotencyKey | None = None
    ) -> Answer:
        def decide():  # noqa: ANN202
            contract = self.contract_of_site(site_id)
            fields_given = {"mail2": "", **self._address(fields)}
            contact = FaultContact(contact_id=uuid4(), site_id=site_id, **fields_given)
            contract.add_fault_contact(contact)
            answer = fault_contact_view(contact)
            return answer, [contract, Index(contact_key(contact.contact_id), contract.id)]

        return self.app.execute(decide, idempotency)

    def change_fault_contact(
        self, contact_id: UUID, changes: dict[str, Any], idempotency: IdempotencyKey | None = None
    ) -> Answer:
        def decide():  # noqa: ANN202
            contract = self.contract_of_contact(contact_id)
            current = contract.fault_contact(contact_id)
            contract.change_contact(contact_id, self._address(changes, current))
            return fault_contact_view(contract.fault_contact(contact_id)), [contract]

        return self.app.execute(decide, idempotency)

    def get_fault_contact(self, contact_id: UUID) -> Answer:
        return fault_contact_view(self.contract_of_contact(contact_id).fault_contact(contact_id))
