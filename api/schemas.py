"""Request and response bodies of the HTTP contract (SPEC section 4)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from api.fields import (
    MAX_LIST_ITEMS,
    AwareInstant,
    Building,
    City,
    CodeNo,
    CompanyName,
    Email,
    EmailOrEmpty,
    IsoDate,
    ModelName,
    Password,
    PersonName,
    Phone,
    PostalCode,
    Prefecture,
    Reason,
    SerialText,
    ServiceName,
    SingleLine,
    SiteName,
    StrictBool,
    Street,
    TermYears,
    TicketIdText,
    Token,
    VerificationCode,
)


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# --- shipment history -------------------------------------------------------------------


class OptionIn(Body):
    serial: SerialText
    code_no: CodeNo
    model: ModelName


class BundleIn(Body):
    service: ServiceName
    term_years: TermYears
    sold_on: IsoDate
    ticket_model: ModelName
    options: list[OptionIn] = Field(default=[], max_length=MAX_LIST_ITEMS)


class ShipmentCreate(Body):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"serial": "S/N:A1B2C3D4E5F6G7H8 A", "code_no": "No.:12345-01", "model": "AT-x510-28GTX", "shipped_on": "2026-11-02"}
            ]
        }
    )
    serial: SerialText
    code_no: CodeNo
    model: ModelName
    shipped_on: IsoDate
    bundle: BundleIn | None = None


class ShipmentPublic(BaseModel):
    serial: str
    code_no: str
    model: str
    shipped_on: date
    bundle: dict[str, Any] | None
    bundle_serial: str | None


class TicketCreate(Body):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "ticket_id": "12345678",
                    "verification_code": "AB12CD",
                    "code_no": "12345-99",
                    "service": "デリバリースタンダード",
                    "term_years": 1,
                    "kind": "new",
                    "sold_on": "2026-11-10",
                }
            ]
        }
    )
    ticket_id: TicketIdText
    verification_code: VerificationCode
    code_no: CodeNo
    service: ServiceName
    term_years: TermYears
    kind: Literal["new", "renewal"]
    sold_on: IsoDate


class TicketPublic(BaseModel):
    ticket_id: str
    code_no: str
    service: str
    term_years: int
    kind: str
    sold_on: date
    registered_serial: str | None


# --- accounts ---------------------------------------------------------------------------


class AccountCreate(Body):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "email": "taro@example.co.jp",
                    "password": "secret123",
                    "name": "山田 太郎",
                    "company_name": "株式会社サンプル",
                    "phone": "03-1234-5678",
                    "agree_terms": True,
                }
            ]
        }
    )
    email: Email
    password: Password
    name: PersonName
    company_name: CompanyName
    phone: Phone
    agree_terms: StrictBool  # JSON true: "yes" or 1 is not consent


class AccountVerify(Body):
    token: Token


class AccountUpdate(Body):
    name: PersonName | None = None
    company_name: CompanyName | None = None
    phone: Phone | None = None
    # a new login ID takes effect only through the confirmation mail sent to it.
    email: Email | None = None


class AccountPublic(BaseModel):
    account_id: UUID
    email: str
    name: str
    company_name: str
    phone: str
    status: Literal["provisional", "active", "erased"]  # erased: its personal data forgotten
    pending_email: str | None = None  # waiting for the confirmation mail's URL
    password_reset_required: bool = False  # Q17: set after the e-mail changed


class EmailChangeConfirm(Body):
    token: Token


class PasswordResetCreate(Body):
    email: Email


class PasswordResetAccepted(BaseModel):
    """The same answer whether or not the address is registered (A-4)."""

    status: Literal["accepted"] = "accepted"
    detail: str
    message_ja: str


class PasswordResetConfirm(Body):
    token: Token
    password: Password


# --- companies, sites, fault contacts -----------------------------------------------------


class CompanyCreate(Body):
    account_id: UUID
    name: CompanyName


class CompanyUpdate(Body):
    name: CompanyName


class CompanyPublic(BaseModel):
    company_id: UUID
    contract_number: str = Field(examples=["SU01234567"])
    name: str
    account_id: UUID
    site_ids: list[UUID]


# Sites and fault contacts share the address (S-2, S-3) and the person to call, declared
# once below. Each model names its bases last field-group first: pydantic puts the fields of
# the last base first, so the members keep their order (name, address, person, mails).


class AddressCreate(Body):
    postal_code: PostalCode
    prefecture: Prefecture | None = Field(default=None, description="filled from the postal code when omitted")
    city: City | None = Field(default=None, description="filled from the postal code when omitted")
    street: Street
    building: Building = ""


class AddressUpdate(Body):
    postal_code: PostalCode | None = None
    prefecture: Prefecture | None = None
    city: City | None = None
    street: Street | None = None
    building: Building | None = None


class AddressPublic(BaseModel):
    postal_code: str
    prefecture: str
    city: str
    street: str
    building: str


class PersonCreate(Body):
    person: PersonName
    phone: Phone


class PersonUpdate(Body):
    person: PersonName | None = None
    phone: Phone | None = None


class PersonPublic(BaseModel):
    person: str
    phone: str


class _SiteName(Body):
    name: SiteName


class _SiteNameUpdate(Body):
    name: SiteName | None = None


class _SiteIds(BaseModel):
    site_id: UUID
    company_id: UUID
    contract_number: str
    name: str


class SiteCreate(PersonCreate, AddressCreate, _SiteName):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "東京本社",
                    "postal_code": "100-0001",
                    "prefecture": "東京都",
                    "city": "千代田区",
                    "street": "千代田1-1",
                    "building": "サンプルビル3F",
                    "person": "佐藤 花子",
                    "phone": "03-1234-5678",
                    "email": "hanako@example.co.jp",
                }
            ]
        }
    )
    email: Email


class SiteUpdate(PersonUpdate, AddressUpdate, _SiteNameUpdate):
    email: Email | None = None


class SitePublic(PersonPublic, AddressPublic, _SiteIds):
    email: str
    fault_contact_ids: list[UUID]


class _ContactCompany(Body):
    company: CompanyName


class _ContactCompanyUpdate(Body):
    company: CompanyName | None = None


class _ContactIds(BaseModel):
    contact_id: UUID
    site_id: UUID
    company: str


class FaultContactCreate(PersonCreate, AddressCreate, _ContactCompany):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "company": "株式会社サンプル",
                    "postal_code": "1000001",
                    "street": "千代田1-1",
                    "person": "鈴木 一郎",
                    "phone": "03-2345-6789",
                    "mail1": "noc@example.co.jp",
                    "mail2": "ichiro@example.co.jp",
                }
            ]
        }
    )
    mail1: Email
    mail2: EmailOrEmpty = ""


class FaultContactUpdate(PersonUpdate, AddressUpdate, _ContactCompanyUpdate):
    mail1: Email | None = None
    mail2: EmailOrEmpty | None = None


class FaultContactPublic(PersonPublic, AddressPublic, _ContactIds):
    mail1: str
    mail2: str


# --- registrations ------------------------------------------------------------------------


class TicketRegistrationCreate(Body):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"ticket_id": "12345678", "verification_code": "AB12CD", "serial": "S/N:A1B2C3D4E5F6G7H8 A"}]
        }
    )
    ticket_id: TicketIdText
    verification_code: VerificationCode
    serial: SerialText


class BundleRegistrationCreate(Body):
    serial: SerialText
    option_serials: list[SerialText] = Field(default=[], max_length=MAX_LIST_ITEMS)


class RenewalCreate(Body):
    ticket_id: TicketIdText
    verification_code: VerificationCode


class ServiceUpgradeCreate(Body):
    service: ServiceName
    reason: Reason = ""


class PeriodPublic(BaseModel):
    start: date
    end: date


class RenewalWindowPublic(BaseModel):
    opens: date
    closes: date


class RegistrationPublic(BaseModel):
    serial: str
    kind: Literal["ticket", "bundle"]
    ticket_id: str | None
    model: str
    code_no: str
    service: str
    term_years: int
    period: PeriodPublic
    status: Literal["future", "active", "expired_renewable", "lapsed"]
    renewal_open: bool
    renewal_window: RenewalWindowPublic
    registered_on: date
    ticket_model: str | None
    option_serials: list[str]
    renewal_ticket_ids: list[str]
    site_id: UUID
    company_id: UUID
    contract_number: str


class RegistrationSite(BaseModel):
    site_id: UUID
    name: str
    address: str
    person: str
    phone: str


class RegistrationContact(BaseModel):
    person: str
    company: str
    phone: str
    mail1: str
    mail2: str


class Actor(BaseModel):
    """Who caused an event: an API key (its id and name), a customer's account, or the
    service itself (`system`); `capacity` "support" when the vendor's support acted for the
    customer. Events recorded before access control have none. A customer reading its own
    contract sees only `customer` (itself), `staff`, or `service` with its `role`."""

    kind: Literal["api_key", "account", "system", "customer", "staff", "service"]
    id: str | None = None
    name: str | None = None
    capacity: str | None = None
    role: str | None = None


class HistoryEvent(BaseModel):
    type: str
    version: int
    timestamp: datetime
    actor: Actor | None = None
    request_id: str | None = None
    data: dict[str, Any]


class ContractHistoryPublic(BaseModel):
    contract_number: str
    company_id: UUID
    total: int = Field(description="Events matching the filters, before paging")
    offset: int = 0
    limit: int | None = None
    events: list[HistoryEvent]


class PostalCodePublic(BaseModel):
    postal_code: str
    prefecture: str
    city: str
    town: str


# --- notifications and timers (M-1…M-4; admin) ------------------------------------------


class TimersRun(Body):
    as_of: AwareInstant = Field(description="Fire every timer due by this instant (ISO 8601 with offset).")


class NotificationPublic(BaseModel):
    notification_id: UUID
    kind: Literal[
        "service_in", "renewal_reminder", "account_confirmation", "email_change_confirmation", "password_reset",
        "account_retention",  # not a mail: a provisional account's data erased when due (docs/privacy.md)
        "already_registered", "email_changed",
    ]
    aggregate_id: UUID
    serial: str | None
    stage: Literal["three_months", "one_month", "expiry_day"] | None
    period_end: date | None
    due_at: datetime
    state: Literal["pending", "sent", "cancelled", "skipped", "failed"]
    attempts: int
    failures: int
    interrupted: int
    last_error: str | None
    recipients: list[str]
    message_id: str | None
    settled_at: datetime | None


class TimersFired(BaseModel):
    as_of: datetime
    fired: list[NotificationPublic]


class NotificationList(BaseModel):
    notifications: list[NotificationPublic]


# --- access: customers' sessions and internal services' API keys --------------------------


class SessionCreate(Body):
    email: Email
    password: Password


class SessionPublic(BaseModel):
    """A customer's bearer token, shown once: send it as `Authorization: Bearer …`."""

    token: str
    token_type: Literal["bearer"] = "bearer"
    account_id: UUID
    expires_at: datetime  # the absolute end; it ends sooner after idle_timeout_seconds without a request
    idle_timeout_seconds: int


class ApiKeyCreate(Body):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    roles: list[SingleLine(40)] = Field(min_length=1, max_length=10)  # type: ignore[valid-type]


class ApiKeyPublic(BaseModel):
    key_id: UUID
    name: str
    roles: list[str]
    created_at: datetime
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None


class ApiKeyCreated(ApiKeyPublic):
    """The key itself is in `token`, shown this once; only its hash is kept."""

    token: str


class ApiKeyList(BaseModel):
    keys: list[ApiKeyPublic]


class CompanySite(BaseModel):
    site_id: UUID
    name: str
    postal_code: str | None = None
    prefecture: str | None = None
    city: str | None = None


class CompanyWithSites(BaseModel):
    company_id: UUID
    contract_number: str
    name: str
    account_id: UUID
    sites: list[CompanySite]


class CompanyList(BaseModel):
    companies: list[CompanyWithSites]


# --- bulk registration (K-1) -----------------------------------------------------------


class BulkRowPublic(BaseModel):
    row: int = Field(description="The row's number in the sheet.")
    status: Literal["registered", "renewed", "already_registered", "refused", "duplicate_in_sheet", "empty"]
    code: str | None = Field(default=None, description="The single commands' code, e.g. SERIAL_NOT_FOUND.")
    message_ja: str | None = None
    detail: str | None = None


class BulkJobPublic(BaseModel):
    job_id: str | None = Field(description="None for a dry run answered at once (nothing is stored).")
    company_id: str
    file_name: str
    dry_run: bool
    status: Literal["queued", "running", "done"]
    total_rows: int
    rows_done: int
    registered: int
    already_registered: int
    refused: int
    empty: int
    percent: float
    estimated_seconds_left: float | None
    submitted_at: str | None
    updated_at: str | None
    rows: list[BulkRowPublic] | None = None


# --- personal data (docs/privacy.md) --------------------------------------------------------


class PersonalDataForget(Body):
    kind: Literal["account", "site-person", "fault-contact"]
    subject_id: UUID
    reason: SingleLine(500) = Field(description="Why: recorded in the PersonalDataErased event")  # type: ignore[valid-type]
    force: StrictBool = Field(False, description="Forget an account even while it still has live coverage")


class PersonalDataForgotten(BaseModel):
    kind: str
    subject_id: UUID
    erased_at: datetime
    key_destroyed: bool = Field(description="False when only a run interrupted part-way was finished")
    timers_cleaned: int = Field(description="Mail timers whose rendered message or addresses were removed")
    mails_deleted: int = Field(description="Copies of sent mails deleted from the Maildir")


class PersonalDataDisclosure(BaseModel):
    """Everything held about a data subject, decrypted (APPI art. 33)."""

    subject: dict[str, Any]
    account: dict[str, Any] | None = None
    companies: list[dict[str, Any]] = []
    site: dict[str, Any] | None = None
    fault_contact: dict[str, Any] | None = None
    contract_number: str | None = None
    events: list[dict[str, Any]] = Field(description="Every event that mentions the subject, in order, decrypted")
