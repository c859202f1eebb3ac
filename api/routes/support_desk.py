"""The support desk: lookup by ticket ID, the entitlement check and the inquiry check (Q-1)."""

from fastapi import APIRouter

from api.deps import MinPositionQuery, SupportDeskDep
from api.problems import PROBLEM_RESPONSES
from api.read_schemas import EntitlementCheck, EntitlementResults, InquiryCheck, InquiryResult, RegistrationLookup

router = APIRouter(prefix="/v1", tags=["support desk"], responses=PROBLEM_RESPONSES)


@router.get("/tickets/{ticket_id}/registration", response_model=RegistrationLookup)
def registration_by_ticket(ticket_id: str, desk: SupportDeskDep, min_position: MinPositionQuery = None) -> dict:
    """The registration a ticket (new or renewal) was used for, as the call center sees it."""
    return desk.registration_by_ticket(ticket_id, min_position)


@router.post("/entitlements/check", response_model=EntitlementResults)
def check_entitlements(body: EntitlementCheck, desk: SupportDeskDep, min_position: MinPositionQuery = None) -> dict:
    """Up to 100 serials at once: each covered, not covered or unknown, with its end date and service."""
    return desk.check_entitlements(body.serials, min_position)


@router.post("/inquiries/check", response_model=InquiryResult)
def check_inquiry(body: InquiryCheck, desk: SupportDeskDep, min_position: MinPositionQuery = None) -> dict:
    """Q-1: is the caller (by e-mail, phone or company) a party to the contract or the unit's
    registration: its registrant, its installation site, or a fault contact?"""
    return desk.check_inquiry(**body.model_dump(), min_position=min_position)
