"""The auditor's view of a contract: its history (paged, filtered) and its state at any instant."""

from typing import Annotated

from fastapi import APIRouter, Query

from api.access import CallerDep, PolicyRoute
from api.deps import HistoryDep
from api.fields import MAX_LIST_ITEMS, MAX_OFFSET, ContractNumber, EventTypeName, Instant
from api.problems import PROBLEM_RESPONSES
from api.read_schemas import ContractAsOf
from api.schemas import ContractHistoryPublic

router = APIRouter(route_class=PolicyRoute, prefix="/v1/contracts", tags=["audit"], responses=PROBLEM_RESPONSES)


@router.get("/{contract_number}/history", response_model=ContractHistoryPublic)
def contract_history(
    contract_number: ContractNumber,
    history: HistoryDep,
    caller: CallerDep,
    event_type: Annotated[
        list[EventTypeName] | None,
        Query(alias="type", max_length=MAX_LIST_ITEMS, description="Only events of these types (repeat the parameter)"),
    ] = None,
    since: Annotated[Instant | None, Query(description="Recorded at or after this instant (ISO 8601)")] = None,
    until: Annotated[Instant | None, Query(description="Recorded before this instant (ISO 8601)")] = None,
    limit: Annotated[int | None, Query(ge=1, le=1000)] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> dict:
    """Every event of the contract, in order, with its type, version, timestamp and data. A
    customer reading its own contract sees who acted as `customer` (itself), `staff` or a
    `service` by its role, and no internal notes."""
    return history.contract_history(contract_number, event_type, since, until, limit, offset,
                                    for_customer=caller.account_id)


@router.get("/{contract_number}", response_model=ContractAsOf)
def contract_as_of(
    contract_number: ContractNumber,
    history: HistoryDep,
    caller: CallerDep,
    as_of: Annotated[
        Instant | None, Query(description="The instant (ISO 8601 with offset); default: now")
    ] = None,
) -> dict:
    """The contract as it stood at `as_of`, rebuilt from its events recorded up to then."""
    return history.contract_as_of(contract_number, as_of, for_customer=caller.account_id)
