"""Response bodies of the reads served from read models (projections): the ticket list,
the call-center lookup, the entitlement and inquiry checks, the dashboards and health."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from api.fields import MAX_LIST_ITEMS, CompanyName, ContractNumber, InquiryEmail, Phone, SerialText
from api.schemas import Actor, Body, PeriodPublic, RegistrationContact, RegistrationPublic, RegistrationSite

TermStatus = Literal["active", "future", "expired_renewable", "lapsed", "expired"]


class ServiceInState(BaseModel):
    state: Literal["waiting", "overdue", "notified"]
    deadline: date = Field(description="M-1: the 4th business day counting from the day after registration")
    notified_at: str | None


class TicketRow(BaseModel):
    """One row of the ticket list: a ticket (new or renewal) or a bundle with its own period."""

    ticket_id: str | None
    kind: Literal["new", "bundle", "renewal"]
    model: str
    serial: str
    service: str
    term_years: int
    period: PeriodPublic
    status: TermStatus
    ending_soon: bool = Field(description="Active and ending within 90 days")
    service_in: ServiceInState | None
    renewal_open: bool = Field(description="The seed's 更新 button: the renewal window is open now")
    registered_on: date | None
    contract_number: str | None
    site_id: UUID


class RegistrationListed(RegistrationPublic):
    ending_soon: bool
    current: bool = Field(description="False once the unit is covered by a later registration")
    service_in: ServiceInState | None
    terms: list[TicketRow] = Field(description="Its tickets over time, ordered active, future, expired")


class EarlierRegistration(BaseModel):
    serial: str
    site_id: UUID
    company_id: UUID
    period: PeriodPublic
    registered_on: date


class RegistrationLookup(RegistrationListed):
    looked_up_serial: str
    company_name: str
    user_name: str | None
    site: RegistrationSite
    fault_contacts: list[RegistrationContact]
    earlier_registrations: list[EarlierRegistration] = Field(
        description="The unit's earlier registrations; to a customer, only those of its own companies"
    )
    earlier_registrations_elsewhere: int = Field(
        0, description="To a customer: how many earlier registrations were another company's (their ids are not shown)"
    )


class SiteTicketList(BaseModel):
    site_id: UUID
    site_name: str
    registrations: list[RegistrationListed]
    tickets: list[TicketRow] = Field(description="サポートチケット一覧: ordered active, future, expired")


# --- entitlement and inquiry checks --------------------------------------------------------


class EntitlementCheck(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"serials": ["S/N:A1B2C3D4E5F6G7H8 A", "UNKNOWN01"]}]})
    serials: list[SerialText] = Field(min_length=1, max_length=MAX_LIST_ITEMS)


class Entitlement(BaseModel):
    serial: str
    normalised_serial: str | None
    status: Literal["covered", "not_covered", "unknown"]
    model: str | None = None
    start: date | None = None
    end: date | None = None
    service: str | None = None
    registration_serial: str | None = None


class EntitlementResults(BaseModel):
    checked_on: date
    results: list[Entitlement]


class InquiryCheck(Body):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"contract_number": "SU01234567", "phone": "03-2345-6789"}]}
    )
    contract_number: ContractNumber | None = None
    serial: SerialText | None = None
    # The caller's address as they give it: compared, not validated as a login ID.
    email: InquiryEmail | None = None
    phone: Phone | None = None
    company: CompanyName | None = None


class InquiryMatch(BaseModel):
    role: Literal["registrant", "site", "fault_contact"]
    field: Literal["email", "phone", "company"]


class InquiryResult(BaseModel):
    contract_number: str | None
    is_party: bool
    matched: list[InquiryMatch]


# --- dashboards ----------------------------------------------------------------------------


class ExpiryCounts(BaseModel):
    ending_30: int
    ending_60: int
    ending_90: int
    ending_180: int
    expired_renewable: int = Field(description="Ended, and the renewal window is still open")
    lapsed: int = Field(description="Ended, and can no longer be renewed")


class MonthCount(BaseModel):
    month: str = Field(examples=["2027-03"])
    count: int


class CompanyCount(BaseModel):
    company_id: UUID
    contract_number: str | None
    company_name: str | None
    count: int


class ExpiryItem(BaseModel):
    serial: str
    kind: Literal["ticket", "bundle"]
    ticket_id: str | None
    model: str
    service: str
    period: PeriodPublic
    days_left: int = Field(description="Days from today to the end; negative once ended")
    renewal_open: bool
    renewal_closes: date
    site_id: UUID
    company_id: UUID
    contract_number: str | None
    company_name: str | None


class ExpiryDashboard(BaseModel):
    as_of: date
    list: str
    counts: ExpiryCounts
    by_month: list[MonthCount]
    by_company: list[CompanyCount]
    total: int
    limit: int
    offset: int
    items: list[ExpiryItem]


class ServiceInCounts(BaseModel):
    waiting: int
    overdue: int
    due_today: int


class ServiceInItem(BaseModel):
    serial: str
    ticket_id: str | None
    kind: Literal["new", "bundle", "renewal"]
    registered_on: date
    deadline: date
    overdue: bool
    days_overdue: int
    period: PeriodPublic
    site_id: UUID | None
    site_name: str | None
    company_id: UUID
    contract_number: str | None
    company_name: str | None


class ServiceInDashboard(BaseModel):
    as_of: date
    counts: ServiceInCounts
    total: int
    limit: int
    offset: int
    items: list[ServiceInItem]


# --- the auditor's view ----------------------------------------------------------------------


class LastChange(BaseModel):
    type: str
    version: int
    timestamp: datetime
    actor: Actor | None = None
    request_id: str | None = None


class ContractAsOf(BaseModel):
    """A contract as it stood at an instant, rebuilt from its events up to then."""

    contract_number: str
    company_id: UUID
    as_of: datetime | None
    version: int = Field(description="The contract's last event version at that instant")
    last_change: LastChange = Field(description="That last event: what it was, when, who made it, in which request")
    name: str
    account_id: UUID
    sites: list[dict[str, Any]]
    fault_contacts: list[dict[str, Any]]
    registrations: list[RegistrationPublic]


# --- operations ------------------------------------------------------------------------------


class FailedEvent(BaseModel):
    """The event a read model stopped at (ids and names only)."""

    position: int = Field(description="Its log position (notification id)")
    topic: str = Field(description="Its event class")
    originator_id: UUID
    originator_version: int
    error_type: str


class ProjectionStatus(BaseModel):
    name: str
    position: int
    head: int
    lag: int
    running_here: bool = Field(description="This process runs it (on PostgreSQL one process per projection does)")
    events_processed: int
    last_error: str | None
    state: Literal["running", "standby", "stopped"] = Field(
        description="stopped: at an event it cannot apply (`failed_event`); reads that need it answer 503 "
        "READ_MODEL_STOPPED until it is fixed and restarted"
    )
    failed_event: FailedEvent | None = None


class DependencyStatus(BaseModel):
    status: Literal["up", "down", "unknown", "not_configured"]
    detail: str | None = Field(None, description="What it is, as configured (never a password)")
    error: str | None = Field(None, description="Why it is down: the last failure")
    since: datetime | None = Field(None, description="Down since, as this process saw it")


class SmtpStatus(DependencyStatus):
    last_result: Literal["sent", "refused", "failed"] | None = Field(
        None, description="The last send from this process: down after a failure to reach the relay"
    )
    last_at: datetime | None = None


class ReadModelsStatus(BaseModel):
    status: Literal["up", "lagging", "stopped", "down"]
    max_lag: int
    failing: list[str] = Field(description="Projections whose last batch failed")
    stopped: list[str] = Field(default=[], description="Projections stopped at an event they cannot apply")


class TimersStatus(BaseModel):
    position: int | None = Field(description="The log position the timer table is up to")
    state: Literal["up_to_date", "behind", "stopped", "unknown"] = Field(
        description="stopped: at an event the mail process managers cannot handle (`failed_event`): no new "
        "timers until it is fixed and the scheduler restarted; timers already in the table still fire"
    )
    failed_event: FailedEvent | None = None
    error: str | None = Field(None, description="unknown: why the store could not be asked")


class SchedulerStatus(BaseModel):
    runs_here: bool = Field(description="This process runs the timer scheduler (the embedded default, or a worker)")
    leader: bool = Field(description="It is the one that fires timers now (one process at a time on PostgreSQL)")
    last_run_at: datetime | None
    timers: TimersStatus = Field(description="The timer table, as a projection of the log (read from the store)")


class Dependencies(BaseModel):
    store: DependencyStatus
    broker: DependencyStatus
    smtp: SmtpStatus
    read_models: ReadModelsStatus
    scheduler: SchedulerStatus


class HealthSummary(BaseModel):
    """What an anonymous caller is told: whether the service is up, nothing about how it is
    deployed (the details need an API key with the admin or dashboards role)."""

    status: Literal["up", "unavailable"] = Field(description="unavailable: the service cannot serve (503)")
    ready: bool


class Health(BaseModel):
    status: Literal["ok", "lagging", "degraded", "unavailable"] = Field(
        description="unavailable: the event store does not answer (503); lagging: a read model is far behind or "
        "failing; degraded: a read model or the timer table stopped at an event it cannot apply (see its "
        "failed_event), or the broker or the SMTP relay is away (commands work, mails wait in their timers)"
    )
    ready: bool = Field(True, description="The event store answers: see /v1/health/ready")
    process_id: int = Field(description="The server process that answered (`running_here` is about it)")
    log_head: int = 0
    projections: list[ProjectionStatus]
    dependencies: Dependencies | None = None
    detail: str | None = None
