"""The support desk: lookup by ticket ID, the entitlement check and the inquiry check (Q-1)."""

from fastapi import APIRouter

from api.access import CallerDep, PolicyRoute
from api.deps import ReadAtDep, SupportDeskDep
from api.fields import TicketIdText
from api.problems import PROBLEM_RESPONSES
from api.read_schemas import EntitlementCheck, EntitlementResults, InquiryCheck, InquiryResult, RegistrationLookup

router = APIRouter(route_class=PolicyRoute, prefix="/v1", tags=["support desk"], responses=PROBLEM_RESPONSES)


@router.get("/tickets/{ticket_id}/registration", response_model=RegistrationLookup)
def registration_by_ticket(
    ticket_id: TicketIdText, caller: CallerDep, desk: SupportDeskDep, read_at: ReadAtDep
) -> dict:
    """The registration a ticket (new or renewal) was used for, as the call center sees it (a
    customer sees earlier registrations of another company only as a count)."""
    return desk.registration_by_ticket(ticket_id, read_at, for_customer=caller.account_id)


@router.post("/entitlements/check", response_model=EntitlementResults)
def check_entitlements(body: EntitlementCheck, desk: SupportDeskDep, read_at: ReadAtDep) -> dict:
    """Up to 100 serials at once: each covered, not covered or unknown, with its end date and service."""
    return desk.check_entitlements(body.serials, read_at)


@router.post("/inquiries/check", response_model=InquiryResult)
def check_inquiry(body: InquiryCheck, desk: SupportDeskDep, read_at: ReadAtDep) -> dict:
    """Q-1: is the caller (by e-mail, phone or company) a party to the contract or the unit's
    registration: its registrant, its installation site, or a fault contact?"""
    return desk.check_inquiry(**body.model_dump(), read_at=read_at)
