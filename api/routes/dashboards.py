"""Dashboards: expiring and expired coverage, and registrations waiting for service-in.
Each list also comes as CSV or Excel (`format=csv|xlsx`: every matching row, no paging)."""

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query

from api.access import PolicyRoute
from api.deps import DashboardsDep, ReadAtDep
from api.exports import XLSX, export
from api.fields import MAX_OFFSET, CompanyName, ContractNumber, ModelName, ServiceName
from api.problems import PROBLEM_RESPONSES
from api.read_schemas import ExpiryDashboard, ServiceInDashboard
from lifecycle.queries.dashboards import ExpiryFilters

router = APIRouter(route_class=PolicyRoute, prefix="/v1/dashboards", tags=["dashboards"], responses=PROBLEM_RESPONSES)

FILES = {
    200: {
        "content": {"text/csv": {}, XLSX: {}},
        "description": "JSON, or with format=csv|xlsx the whole list as a file",
    }
}
Format = Annotated[Literal["json", "csv", "xlsx"], Query(alias="format", description="json, or a file of the whole list")]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]

EXPIRY_COLUMNS = (
    "contract_number", "company_name", "serial", "kind", "ticket_id", "model", "service",
    "period_start", "period_end", "days_left", "renewal_open", "renewal_closes", "site_id", "company_id",
)
SERVICE_IN_COLUMNS = (
    "contract_number", "company_name", "site_name", "serial", "ticket_id", "kind", "registered_on",
    "deadline", "overdue", "days_overdue", "period_start", "period_end", "site_id", "company_id",
)


@router.get("/expiry", response_model=ExpiryDashboard, responses=FILES)
def expiry(
    dashboards: DashboardsDep,
    read_at: ReadAtDep,
    list_name: Annotated[
        Literal["ending_30", "ending_60", "ending_90", "ending_180", "expired_renewable", "lapsed"],
        Query(alias="list", description="Which list: ending within N days, expired but renewable, or lapsed"),
    ] = "ending_90",
    contract_number: ContractNumber | None = None,
    site_id: UUID | None = None,
    service: ServiceName | None = None,
    model: ModelName | None = None,
    company: Annotated[CompanyName | None, Query(description="Part of the company name")] = None,
    sort: Literal["end", "-end", "serial", "contract_number", "company", "model"] = "end",
    limit: Limit = 50,
    offset: Offset = 0,
    file_format: Format = "json",
):  # noqa: ANN201 - JSON or a file
    """Coverage ending within 30/60/90/180 days, expired but still renewable, and lapsed: counts
    of each, the chosen list grouped by month of end and by company, and one page of it."""
    filters = ExpiryFilters(contract_number, str(site_id) if site_id else None, service, model, company)
    answer = dashboards.expiry(
        list_name, filters, sort, limit, offset, read_at, export=file_format != "json"
    )
    if file_format == "json":
        return answer
    return export(answer["items"], EXPIRY_COLUMNS, file_format, f"expiry-{list_name}-{answer['as_of']}", list_name)


@router.get("/service-in", response_model=ServiceInDashboard, responses=FILES)
def service_in(
    dashboards: DashboardsDep,
    read_at: ReadAtDep,
    overdue: Annotated[bool, Query(description="Only those past their M-1 deadline")] = False,
    contract_number: ContractNumber | None = None,
    site_id: UUID | None = None,
    sort: Literal["deadline", "-deadline", "registered_on", "contract_number"] = "deadline",
    limit: Limit = 50,
    offset: Offset = 0,
    file_format: Format = "json",
):  # noqa: ANN201 - JSON or a file
    """Registrations (new tickets, bundles, renewals) waiting for their service-in mail, with
    the M-1 deadline (the 4th business day counting from the day after registration)."""
    answer = dashboards.service_in(
        overdue, contract_number, str(site_id) if site_id else None, sort, limit, offset, read_at,
        export=file_format != "json",
    )
    if file_format == "json":
        return answer
    name = "service-in-overdue" if overdue else "service-in"
    return export(answer["items"], SERVICE_IN_COLUMNS, file_format, f"{name}-{answer['as_of']}", name)
