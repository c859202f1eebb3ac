"""Installation companies, sites and fault contacts (S-1…S-5)."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query

from api.access import CallerDep, PolicyRoute
from api.deps import CompaniesDep, IdempotencyDep, ReadAtDep, SupportDeskDep
from api.problems import PROBLEM_RESPONSES
from api.schemas import (
    CompanyCreate,
    CompanyList,
    CompanyPublic,
    CompanyUpdate,
    FaultContactCreate,
    FaultContactPublic,
    FaultContactUpdate,
    SiteCreate,
    SitePublic,
    SiteUpdate,
)
from lifecycle.domain.errors import AccountIdRequired

router = APIRouter(route_class=PolicyRoute, prefix="/v1", tags=["companies and sites"], responses=PROBLEM_RESPONSES)


@router.get("/companies", response_model=CompanyList)
def list_companies(
    caller: CallerDep,
    support_desk: SupportDeskDep,
    read_at: ReadAtDep,
    account_id: Annotated[
        UUID | None, Query(description="Whose companies (an API key must name the account; a customer sees its own)")
    ] = None,
) -> dict:
    """A customer's installation companies with their sites (Q-2: a customer sees only its own)."""
    if caller.is_customer:
        if account_id is not None and str(account_id) != caller.account_id:
            return {"companies": []}  # another customer's: as if it had none
        account_id = UUID(caller.account_id)
    elif account_id is None:
        raise AccountIdRequired("An API key lists the companies of one account: pass ?account_id=.")
    return {"companies": support_desk.companies_of(account_id, read_at)}


@router.post("/companies", status_code=201, response_model=CompanyPublic)
def register_company(body: CompanyCreate, companies: CompaniesDep, idempotency: IdempotencyDep) -> dict:
    """Register an installation company; it gets its contract number SU + 8 digits."""
    return companies.register_company(body.account_id, body.name, idempotency)


@router.get("/companies/{company_id}", response_model=CompanyPublic)
def get_company(company_id: UUID, companies: CompaniesDep) -> dict:
    return companies.get_company(company_id)


@router.patch("/companies/{company_id}", response_model=CompanyPublic)
def rename_company(company_id: UUID, body: CompanyUpdate, companies: CompaniesDep, idempotency: IdempotencyDep) -> dict:
    return companies.rename_company(company_id, body.name, idempotency)


@router.post("/companies/{company_id}/sites", status_code=201, response_model=SitePublic)
def add_site(company_id: UUID, body: SiteCreate, companies: CompaniesDep, idempotency: IdempotencyDep) -> dict:
    """Add an installation site; prefecture and city are filled from the postal code when omitted."""
    return companies.add_site(company_id, body.model_dump(exclude_none=True, mode="json"), idempotency)


@router.get("/sites/{site_id}", response_model=SitePublic)
def get_site(site_id: UUID, companies: CompaniesDep) -> dict:
    return companies.get_site(site_id)


@router.patch("/sites/{site_id}", response_model=SitePublic)
def change_site(site_id: UUID, body: SiteUpdate, companies: CompaniesDep, idempotency: IdempotencyDep) -> dict:
    return companies.change_site(site_id, body.model_dump(exclude_unset=True, exclude_none=True, mode="json"), idempotency)


@router.post("/sites/{site_id}/fault-contacts", status_code=201, response_model=FaultContactPublic)
def add_fault_contact(site_id: UUID, body: FaultContactCreate, companies: CompaniesDep, idempotency: IdempotencyDep) -> dict:
    return companies.add_fault_contact(site_id, body.model_dump(exclude_none=True, mode="json"), idempotency)


@router.get("/fault-contacts/{contact_id}", response_model=FaultContactPublic)
def get_fault_contact(contact_id: UUID, companies: CompaniesDep) -> dict:
    return companies.get_fault_contact(contact_id)


@router.patch("/fault-contacts/{contact_id}", response_model=FaultContactPublic)
def change_fault_contact(
    contact_id: UUID, body: FaultContactUpdate, companies: CompaniesDep, idempotency: IdempotencyDep
) -> dict:
    return companies.change_fault_contact(contact_id, body.model_dump(exclude_unset=True, exclude_none=True, mode="json"), idempotency)
