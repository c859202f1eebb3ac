"""The shipment history, recorded by the order desk and shipping."""

from fastapi import APIRouter

from api.access import PolicyRoute
from api.deps import IdempotencyDep, ShipmentsDep
from api.problems import PROBLEM_RESPONSES
from api.schemas import ShipmentCreate, ShipmentPublic, TicketCreate, TicketPublic

router = APIRouter(route_class=PolicyRoute, prefix="/v1", tags=["shipment history"], responses=PROBLEM_RESPONSES)


@router.post("/shipments", status_code=201, response_model=ShipmentPublic)
def record_shipment(body: ShipmentCreate, shipments: ShipmentsDep, idempotency: IdempotencyDep) -> dict:
    """Record a shipped unit; a maintenance bundle lists its terms and standard options."""
    bundle = body.bundle.model_dump() if body.bundle else None
    return shipments.record_shipment(body.serial, body.code_no, body.model, body.shipped_on, bundle, idempotency)


@router.post("/tickets", status_code=201, response_model=TicketPublic)
def record_ticket_sale(body: TicketCreate, shipments: ShipmentsDep, idempotency: IdempotencyDep) -> dict:
    """Record a sold support ticket (new or renewal)."""
    return shipments.record_ticket_sale(
        body.ticket_id, body.verification_code, body.code_no, body.service, body.term_years, body.kind,
        body.sold_on, idempotency,
    )
