"""New tickets, bundles and renewals, and the call center's lookups (T-*, B-*, R-*)."""

from uuid import UUID

from fastapi import APIRouter

from api.access import CallerDep, PolicyRoute
from api.deps import IdempotencyDep, ReadAtDep, RegistrationsDep, SupportDeskDep
from api.fields import SerialText
from api.problems import PROBLEM_RESPONSES
from api.read_schemas import RegistrationLookup, SiteTicketList
from api.schemas import (
    BundleRegistrationCreate,
    RegistrationPublic,
    RenewalCreate,
    ServiceUpgradeCreate,
    TicketRegistrationCreate,
)

router = APIRouter(route_class=PolicyRoute, prefix="/v1", tags=["registrations"], responses=PROBLEM_RESPONSES)


@router.post("/sites/{site_id}/registrations", status_code=201, response_model=RegistrationPublic)
def register_ticket(site_id: UUID, body: TicketRegistrationCreate, registrations: RegistrationsDep, idempotency: IdempotencyDep) -> dict:
    """Register a new support ticket for a unit at a site; the period follows the sale date."""
    return registrations.register_ticket(site_id, body.ticket_id, body.verification_code, body.serial, idempotency)


@router.post("/sites/{site_id}/bundles", status_code=201, response_model=RegistrationPublic)
def register_bundle(site_id: UUID, body: BundleRegistrationCreate, registrations: RegistrationsDep, idempotency: IdempotencyDep) -> dict:
    """Register a maintenance bundle with the serials of its standard options."""
    return registrations.register_bundle(site_id, body.serial, body.option_serials, idempotency)


@router.get("/sites/{site_id}/registrations", response_model=SiteTicketList)
def site_registrations(site_id: UUID, desk: SupportDeskDep, read_at: ReadAtDep) -> dict:
    """The site's ticket list (サポートチケット一覧): its registrations, and every ticket over time
    with its status, service-in state and whether renewal is open, ordered active, future, expired."""
    return desk.site_tickets(site_id, read_at)


@router.post("/registrations/{serial}/renewals", status_code=201, response_model=RegistrationPublic)
def renew(serial: SerialText, body: RenewalCreate, registrations: RegistrationsDep, idempotency: IdempotencyDep) -> dict:
    """Renew a registration with a renewal ticket while the renewal window is open."""
    return registrations.renew(serial, body.ticket_id, body.verification_code, idempotency)


@router.post("/registrations/{serial}/service-upgrades", status_code=201, response_model=RegistrationPublic)
def upgrade_service_level(
    serial: SerialText, body: ServiceUpgradeCreate, registrations: RegistrationsDep, idempotency: IdempotencyDep
) -> dict:
    """Internal: a sales action upgrading the service level (Q12)."""
    return registrations.upgrade_service_level(serial, body.service, body.reason, idempotency)


@router.get("/registrations/{serial}", response_model=RegistrationLookup)
def registration(serial: SerialText, caller: CallerDep, desk: SupportDeskDep, read_at: ReadAtDep) -> dict:
    """One registration for the call center (seed p.21), by the serial of the unit or of one
    of its bundle's options: ticket ID, user name, model, serial, site, period, fault contacts.
    A customer sees earlier registrations of another company only as a count."""
    return desk.registration(serial, read_at, for_customer=caller.account_id)
