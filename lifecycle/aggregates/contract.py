"""The contract of one installation company (設置先会社): its contract number, sites,
fault contacts and registrations. Every change is one of the events below."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import date, datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from lifecycle.aggregates.audited import AuditedCreated, AuditedEvent
from lifecycle.aggregates.layered import LayeredMap
from lifecycle.aggregates.shipments import OptionUnit
from lifecycle.domain.addresses import Address
from lifecycle.domain.dates import TOKYO
from lifecycle.domain.errors import (
    AlreadyForgotten,
    FaultContactNotFound,
    FaultContactRequired,
    NotRegistered,
    RenewalWindowClosed,
    SiteNotFound,
)
from lifecycle.domain.periods import RenewalPolicy, SupportPeriod
from lifecycle.domain.privacy import ERASED, PERSONAL_FIELDS, SubjectKind, is_erased


@dataclass(frozen=True)
class Site(Address):
    """An installation site (設置先拠点)."""

    site_id: UUID
    name: str
    person: str
    phone: str
    email: str


@dataclass(frozen=True)
class FaultContact(Address):
    """Who the vendor contacts on a fault (障害時連絡先)."""

    contact_id: UUID
    site_id: UUID
    company: str
    person: str
    phone: str
    mail1: str
    mail2: str


@dataclass(frozen=True)
class Registration:
    """A unit covered at a site by a ticket or a bundle, with its current support period."""

    serial: str
    site_id: UUID
    ticket_id: str | None  # None for a maintenance bundle
    code_no: str
    model: str
    service: str
    term_years: int
    period: SupportPeriod
    registered_on: date
    ticket_model: str | None = None  # the ticket model a bundle carries (B-3)
    options: tuple[OptionUnit, ...] = ()
    renewal_ticket_ids: tuple[str, ...] = ()
    covered_from: date | None = None  # the first period's start; renewals keep it

    def __post_init__(self) -> None:  # JSON gives lists back
        object.__setattr__(self, "options", tuple(self.options))
        object.__setattr__(self, "renewal_ticket_ids", tuple(self.renewal_ticket_ids))
        if self.covered_from is None:
            object.__setattr__(self, "covered_from", self.period.start)

    @property
    def coverage(self) -> SupportPeriod:
        """From the first start to the current end: renewals continue without a gap."""
        assert self.covered_from is not None
        return SupportPeriod(self.covered_from, self.period.end)

    @property
    def is_bundle(self) -> bool:
        return self.ticket_id is None


# What an edit may change (everything but the ids).
SITE_FIELDS = frozenset(f.name for f in fields(Site)) - {"site_id"}
CONTACT_FIELDS = frozenset(f.name for f in fields(FaultContact)) - {"contact_id", "site_id"}


def changed_fields(current: object, changes: dict[str, Any], editable: frozenset[str]) -> dict[str, Any]:
    """What an edit really changes: an event records only those (nothing when none)."""
    assert set(changes) <= editable, changes
    return {k: v for k, v in changes.items() if getattr(current, k) != v}


class Contract(Aggregate):
    # Snapshots: v2 keeps registrations and mails sent in LayeredMaps (v1: plain dicts).
    class_version = 2

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state["registrations"] = LayeredMap(state["registrations"])
        # Snapshots taken before mails were recorded lack the attribute.
        state["notifications_sent"] = LayeredMap(state.get("notifications_sent", {}))

    @staticmethod
    def create_id(contract_number: str, **_: object) -> UUID:
        return uuid5(NAMESPACE_URL, f"/contracts/{contract_number}")

    class CompanyRegistered(AuditedCreated):
        contract_number: str
        account_id: UUID
        name: str

    @event(CompanyRegistered)
    def __init__(self, contract_number: str, account_id: UUID, name: str) -> None:
        self.contract_number = contract_number
        self.account_id = account_id
        self.name = name
        # Keyed by str(uuid) so that snapshots encode as JSON objects.
        self.sites: dict[str, Site] = {}
        self.fault_contacts: dict[str, FaultContact] = {}
        # They grow with the company: copied per command at a cost that does not.
        self.registrations: LayeredMap[str, Registration] = LayeredMap()
        self.notifications_sent: LayeredMap[str, str] = LayeredMap()  # notification id -> message id

    def __deepcopy__(self, memo: dict[int, Any]) -> Contract:
        """The copy each command gets of a cached contract. Everything the containers hold
        (frozen dataclasses, strings, events) is immutable, so copying the containers makes a
        deep copy: a command's changes never reach the cached contract, at a fraction of
        `copy.deepcopy`'s cost for a company with many registrations."""
        copy = object.__new__(type(self))
        copy.__dict__.update(
            (name, value.copy() if isinstance(value, dict | list | LayeredMap) else value)
            for name, value in self.__dict__.items()
        )
        return copy

    class CompanyRenamed(AuditedEvent):
        name: str

    @event(CompanyRenamed)
    def _renamed(self, name: str) -> None:
        self.name = name

    def rename(self, name: str) -> None:
        if name != self.name:
            self._renamed(name)

    # --- sites and fault contacts (S-2, S-4) ------------------------------------------

    class SiteAdded(AuditedEvent):
        class_version = 2

        site: Site  # v2: the value object (v1 had its ten fields side by side)

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["site"] = Site(**{name: state.pop(name) for name in SITE_FIELDS | {"site_id"}})

    @event(SiteAdded)
    def add_site(self, site: Site) -> None:
        self.sites[str(site.site_id)] = site

    def site(self, site_id: UUID) -> Site:
        try:
            return self.sites[str(site_id)]
        except KeyError:
            raise SiteNotFound(f"Site {site_id} is not registered.") from None

    def change_site(self, site_id: UUID, changes: dict[str, Any]) -> None:
        changed = changed_fields(self.site(site_id), changes, SITE_FIELDS)
        if changed:
            self._site_changed(site_id, changed)

    class SiteChanged(AuditedEvent):
        site_id: UUID
        changes: dict[str, Any]

    @event(SiteChanged)
    def _site_changed(self, site_id: UUID, changes: dict[str, Any]) -> None:
        self.sites[str(site_id)] = replace(self.sites[str(site_id)], **changes)

    def add_fault_contact(self, contact: FaultContact) -> None:
        self.site(contact.site_id)
        self._fault_contact_added(contact)

    class FaultContactAdded(AuditedEvent):
        class_version = 2

        contact: FaultContact  # v2: the value object (v1 had its twelve fields side by side)

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            fields = CONTACT_FIELDS | {"contact_id", "site_id"}
            state["contact"] = FaultContact(**{name: state.pop(name) for name in fields})

    @event(FaultContactAdded)
    def _fault_contact_added(self, contact: FaultContact) -> None:
        self.fault_contacts[str(contact.contact_id)] = contact

    def fault_contact(self, contact_id: UUID) -> FaultContact:
        try:
            return self.fault_contacts[str(contact_id)]
        except KeyError:
            raise FaultContactNotFound(f"Fault contact {contact_id} is not registered.") from None

    def fault_contacts_of(self, site_id: UUID) -> list[FaultContact]:
        return [c for c in self.fault_contacts.values() if c.site_id == site_id]

    # --- personal data forgotten (docs/privacy.md) --------------------------------------

    class PersonalDataErased(AuditedEvent):
        """A site's person or a fault contact forgotten (APPI): its key destroyed, so every
        earlier copy of its fields reads as erased. Holds no personal data: who asked is the
        actor, when the timestamp, why the reason."""

        subject_kind: str  # SubjectKind: site-person or fault-contact
        subject_id: UUID
        reason: str

    def erase_personal_data(self, kind: SubjectKind, subject_id: UUID, reason: str) -> None:
        holder = self.site(subject_id) if kind is SubjectKind.SITE_PERSON else self.fault_contact(subject_id)
        if all(is_erased(getattr(holder, name)) or not getattr(holder, name) for name in PERSONAL_FIELDS[kind]):
            raise AlreadyForgotten(f"The personal data of {kind.value} {subject_id} is already erased.")
        self._personal_data_erased(kind.value, subject_id, reason)

    @event(PersonalDataErased)
    def _personal_data_erased(self, subject_kind: str, subject_id: UUID, reason: str) -> None:
        kind = SubjectKind(subject_kind)
        erased = dict.fromkeys(PERSONAL_FIELDS[kind], ERASED)
        if kind is SubjectKind.SITE_PERSON:
            self.sites[str(subject_id)] = replace(self.sites[str(subject_id)], **erased)
        else:
            self.fault_contacts[str(subject_id)] = replace(self.fault_contacts[str(subject_id)], **erased)

    def change_contact(self, contact_id: UUID, changes: dict[str, Any]) -> None:
        changed = changed_fields(self.fault_contact(contact_id), changes, CONTACT_FIELDS)
        if changed:
            self._contact_changed(contact_id, changed)

    class ContactChanged(AuditedEvent):
        contact_id: UUID
        changes: dict[str, Any]

    @event(ContactChanged)
    def _contact_changed(self, contact_id: UUID, changes: dict[str, Any]) -> None:
        key = str(contact_id)
        self.fault_contacts[key] = replace(self.fault_contacts[key], **changes)

    # --- registrations (T-*, B-*, R-*) ------------------------------------------------

    def check_site_ready_for_registration(self, site_id: UUID) -> None:
        """S-5: a product is registered at a site only once the site has a fault contact (one
        whose data was forgotten cannot be contacted: it does not count). Checked here alone:
        a registration's decision calls it first, before it changes the ticket or the unit
        (register_ticket and register_bundle record what was decided)."""
        self.site(site_id)
        if not [c for c in self.fault_contacts_of(site_id) if not is_erased(c.mail1)]:
            raise FaultContactRequired(
                f"Site {site_id} has no fault contact; add one before registering products."
            )

    class TicketRegistered(AuditedEvent):
        site_id: UUID
        serial: str
        ticket_id: str
        code_no: str
        model: str
        service: str
        term_years: int
        sold_on: date
        period: SupportPeriod
        registered_on: date

    @event(TicketRegistered)
    def register_ticket(
        self,
        site_id: UUID,
        serial: str,
        ticket_id: str,
        code_no: str,
        model: str,
        service: str,
        term_years: int,
        sold_on: date,
        period: SupportPeriod,
        registered_on: date,
    ) -> None:
        self.registrations[serial] = Registration(
            serial, site_id, ticket_id, code_no, model, service, term_years, period, registered_on
        )

    class BundleRegistered(AuditedEvent):
        site_id: UUID
        serial: str
        code_no: str
        model: str
        service: str
        term_years: int
        sold_on: date
        ticket_model: str
        options: tuple[OptionUnit, ...]
        period: SupportPeriod
        registered_on: date

    @event(BundleRegistered)
    def register_bundle(
        self,
        site_id: UUID,
        serial: str,
        code_no: str,
        model: str,
        service: str,
        term_years: int,
        sold_on: date,
        ticket_model: str,
        options: tuple[OptionUnit, ...],
        period: SupportPeriod,
        registered_on: date,
    ) -> None:
        self.registrations[serial] = Registration(
            serial,
            site_id,
            None,
            code_no,
            model,
            service,
            term_years,
            period,
            registered_on,
            ticket_model=ticket_model,
            options=tuple(options),
        )

    def registration(self, serial: str) -> Registration:
        try:
            return self.registrations[serial]
        except KeyError:
            raise NotRegistered(f"Unit {serial} has no registration in this contract.") from None

    def renew(
        self,
        serial: str,
        ticket_id: str,
        service: str,
        term_years: int,
        period: SupportPeriod,
        today: date,
        policy: RenewalPolicy,
    ) -> None:
        current = self.registration(serial)
        if not policy.is_open(current.period.end, today):
            opens, closes = policy.window(current.period.end)
            raise RenewalWindowClosed(
                f"Unit {serial} can be renewed from {opens} to {closes}, not on {today}.",
                window={"opens": opens.isoformat(), "closes": closes.isoformat()},
            )
        self._renewed(serial, ticket_id, service, term_years, period, current.period.end, today)

    class Renewed(AuditedEvent):
        class_version = 2

        serial: str
        ticket_id: str
        service: str
        term_years: int
        period: SupportPeriod
        previous_end: date
        renewed_on: date  # v2: the Tokyo business date, as registered_on is for registrations

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["renewed_on"] = state["timestamp"].astimezone(TOKYO).date()

    @event(Renewed)
    def _renewed(
        self,
        serial: str,
        ticket_id: str,
        service: str,
        term_years: int,
        period: SupportPeriod,
        previous_end: date,
        renewed_on: date,
    ) -> None:
        current = self.registrations[serial]
        self.registrations[serial] = replace(
            current,
            service=service,
            term_years=term_years,
            period=period,
            renewal_ticket_ids=(*current.renewal_ticket_ids, ticket_id),
        )

    class ServiceLevelUpgraded(AuditedEvent):
        """Q12: a sales action, recorded as an internal command."""

        serial: str
        service: str
        reason: str

    def upgrade_service_level(self, serial: str, service: str, reason: str) -> None:
        self.registration(serial)
        self._service_level_upgraded(serial, service, reason)

    @event(ServiceLevelUpgraded)
    def _service_level_upgraded(self, serial: str, service: str, reason: str) -> None:
        self.registrations[serial] = replace(self.registrations[serial], service=service)

    # --- mails sent (M-1…M-4) ------------------------------------------------------------
    # Each mail is recorded once, under the id of its notification (the timer that sent it).

    def has_notified(self, notification_id: UUID) -> bool:
        return str(notification_id) in self.notifications_sent

    def notification_recipients(self, serial: str, registrant_email: str) -> list[str]:
        """M-1, M-3: the registrant and mail1/mail2 of every fault contact of the unit's
        site, as they are now (S-4: later mails go to the current contacts); addresses
        whose subject was forgotten are left out (`erased_recipients` names them)."""
        registration = self.registration(serial)
        addresses = [registrant_email]
        for contact in self.fault_contacts_of(registration.site_id):
            addresses += [contact.mail1, contact.mail2]
        unique: dict[str, str] = {}
        for address in addresses:
            if address and address.strip() and not is_erased(address):
                unique.setdefault(address.strip().lower(), address.strip())
        return list(unique.values())

    def erased_recipients(self, serial: str, registrant_email: str) -> list[str]:
        """Who a mail about the unit would have gone to but for a forgotten subject: the
        registrant, or fault contacts by id (a reason recorded with the mail)."""
        registration = self.registration(serial)
        erased = ["registrant"] if is_erased(registrant_email) else []
        erased += [
            f"fault contact {c.contact_id}"
            for c in self.fault_contacts_of(registration.site_id)
            if is_erased(c.mail1)
        ]
        return erased

    class ContractMailSent(AuditedEvent):
        """M-1, M-3: a mail about a unit's coverage was taken by the mail server. What every
        such event carries; the mail's own events add what it was about."""

        class_version = 2

        notification_id: UUID
        serial: str
        recipients: list[str]
        message_id: str
        sent_at: datetime
        # v2: the data subject of each recipient, so each address is sealed under its own key
        recipient_subjects: list[UUID]

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["recipient_subjects"] = []  # unknown: those addresses were stored in clear

        def apply(self, aggregate: Contract) -> None:
            aggregate.notifications_sent[str(self.notification_id)] = self.message_id

    class ServiceInNotified(ContractMailSent):
        period: SupportPeriod

    class RenewalReminderSent(ContractMailSent):
        stage: str  # three_months (M-3), one_month, expiry_day
        period_end: date

    def record_mail_sent(
        self, kind: type[ContractMailSent], notification_id: UUID, serial: str, recipients: list[str],
        message_id: str, sent_at: datetime, **about: Any,
    ) -> None:
        """Once per notification: a mail sent again after a lost answer records nothing."""
        registration = self.registration(serial)
        if not self.has_notified(notification_id):
            self.trigger_event(kind, notification_id=notification_id, serial=serial, recipients=list(recipients),
                               message_id=message_id, sent_at=sent_at,
                               recipient_subjects=self._subjects_of(registration.site_id, recipients), **about)

    def record_service_in_notified(
        self, notification_id: UUID, serial: str, recipients: list[str], message_id: str, sent_at: datetime
    ) -> None:
        period = self.registration(serial).period
        self.record_mail_sent(self.ServiceInNotified, notification_id, serial, recipients, message_id, sent_at,
                              period=period)

    def _subjects_of(self, site_id: UUID, recipients: list[str]) -> list[UUID]:
        """The data subject of each recipient: a fault contact of the site whose mail1 or
        mail2 it is, otherwise the registrant."""
        contacts = {}
        for contact in self.fault_contacts_of(site_id):
            for address in (contact.mail1, contact.mail2):
                contacts.setdefault(address.strip().lower(), contact.contact_id)
        return [contacts.get(r.strip().lower(), self.account_id) for r in recipients]

    def record_renewal_reminder_sent(
        self, notification_id: UUID, serial: str, stage: str, period_end: date, recipients: list[str],
        message_id: str, sent_at: datetime,
    ) -> None:
        self.record_mail_sent(self.RenewalReminderSent, notification_id, serial, recipients, message_id, sent_at,
                              stage=stage, period_end=period_end)
