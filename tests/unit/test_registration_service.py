"""The registration commands on the in-memory store (eventsourcing's POPO recorder) with a
fake postal directory: T-4, T-5 and B-2 decided by the aggregates' check_* methods, and
nothing saved when a check refuses."""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

import pytest

from lifecycle.aggregates.shipments import Ticket, Unit
from lifecycle.application import LifecycleApplication
from lifecycle.domain.dates import TOKYO
from lifecycle.domain.errors import (
    BundleOptionsInvalid,
    BundleOptionsMissing,
    NotABundle,
    ProductCodeMismatch,
    TicketKindMismatch,
    TicketNotEligible,
)

SOLD = date(2026, 11, 10)


@pytest.fixture
def app(application: LifecycleApplication) -> LifecycleApplication:
    return application


@pytest.fixture
def site_id(app: LifecycleApplication) -> UUID:
    account = app.accounts.sign_up("taro@example.co.jp", "secret123", "山田 太郎", "株式会社サンプル",
                                   "03-1234-5678", True)
    app.accounts.verify_account(app.accounts.confirmation_token(account["account_id"]))
    company = app.companies.register_company(account["account_id"], "株式会社サンプル")
    site = app.companies.add_site(company["company_id"], {
        "name": "東京本社", "postal_code": "1000001", "street": "千代田1-1", "person": "佐藤 花子",
        "phone": "03-1234-5678", "email": "hanako@example.co.jp",
    })
    app.companies.add_fault_contact(site["site_id"], {
        "company": "株式会社サンプル", "postal_code": "1000001", "street": "千代田1-1", "person": "鈴木 一郎",
        "phone": "03-2345-6789", "mail1": "noc@example.co.jp",
    })
    return site["site_id"]


def ticket(app: LifecycleApplication, ticket_id: str, code_no: str = "12345-99", *, kind: str = "new",
           term_years: int = 1, service: str = "デリバリースタンダード") -> str:
    app.shipments.record_ticket_sale(ticket_id, "AB12CD", code_no, service, term_years, kind, SOLD)
    return ticket_id


def unit(app: LifecycleApplication, serial: str, code_no: str = "12345-01", bundle: dict | None = None) -> str:
    app.shipments.record_shipment(serial, code_no, "AT-x510", date(2026, 11, 2), bundle)
    return serial


def is_used(app: LifecycleApplication, ticket_id: str) -> bool:
    return app.load(Ticket.create_id(ticket_id), Ticket).used_for is not None  # type: ignore[union-attr]


def is_covered(app: LifecycleApplication, serial: str) -> bool:
    return app.load(Unit.create_id(serial), Unit).contract_id is not None  # type: ignore[union-attr]


class TestRegisterTicket:
    def test_T4_ticket_for_another_product_is_refused_and_nothing_is_used_up(
        self, app: LifecycleApplication, site_id: UUID
    ) -> None:
        other_product = unit(app, "SN54321", code_no="54321-01")
        sold = ticket(app, "10000001", code_no="12345-99")
        with pytest.raises(ProductCodeMismatch):
            app.registrations.register_ticket(site_id, sold, "AB12CD", other_product)
        assert not is_used(app, sold) and not is_covered(app, other_product)
        # The same ticket still registers on its own product, and the unit takes a fitting ticket.
        assert app.registrations.register_ticket(site_id, sold, "AB12CD", unit(app, "SN12345"))["serial"] == "SN12345"
        fitting = ticket(app, "10000002", code_no="54321-77")
        assert app.registrations.register_ticket(site_id, fitting, "AB12CD", other_product)["serial"] == "SN54321"

    def test_T5_renewal_ticket_cannot_start_a_new_coverage(self, app: LifecycleApplication, site_id: UUID) -> None:
        renewal = ticket(app, "10000003", kind="renewal")
        serial = unit(app, "SN0003")
        with pytest.raises(TicketKindMismatch):
            app.registrations.register_ticket(site_id, renewal, "AB12CD", serial)
        assert not is_used(app, renewal) and not is_covered(app, serial)

    @pytest.mark.parametrize("term_years, service", [(7, "デリバリースタンダード"), (1, "オンサイト")])
    def test_T5_only_delivery_standard_1_or_5_years_starts_a_coverage(
        self, app: LifecycleApplication, site_id: UUID, term_years: int, service: str
    ) -> None:
        sold = ticket(app, "10000004", term_years=term_years, service=service)
        with pytest.raises(TicketNotEligible):
            app.registrations.register_ticket(site_id, sold, "AB12CD", unit(app, "SN0004"))
        assert not is_used(app, sold)
        five_years = ticket(app, "10000005", term_years=5, service="Delivery Standard")
        answer = app.registrations.register_ticket(site_id, five_years, "AB12CD", unit(app, "SN0005"))
        assert answer["period"] == {"start": date(2026, 12, 1), "end": date(2032, 2, 29)}  # 63 months (P-1)


BUNDLE = {
    "service": "デリバリースタンダード", "term_years": 5, "sold_on": SOLD, "ticket_model": "AT-x510-DS5",
    "options": [{"serial": "OPT0001", "code_no": "11111-01", "model": "PWR"},
                {"serial": "OPT0002", "code_no": "11111-02", "model": "FAN"}],
}


class TestRegisterBundle:
    def test_B2_missing_option_serials_are_refused_naming_them(self, app: LifecycleApplication, site_id: UUID) -> None:
        serial = unit(app, "BDL0001", bundle=BUNDLE)
        with pytest.raises(BundleOptionsMissing) as refused:
            app.registrations.register_bundle(site_id, serial, ["OPT0001"])
        assert refused.value.extra["serials"] == ["OPT0002"]
        assert not any(is_covered(app, s) for s in (serial, "OPT0001", "OPT0002"))

    def test_B2_serials_that_are_not_its_options_are_refused_naming_them(
        self, app: LifecycleApplication, site_id: UUID
    ) -> None:
        serial = unit(app, "BDL0002", bundle={**BUNDLE, "options": BUNDLE["options"][:1]})
        with pytest.raises(BundleOptionsInvalid) as refused:
            app.registrations.register_bundle(site_id, serial, ["OPT0001", "S/N:OPTX999 A"])
        assert refused.value.extra["serials"] == ["OPTX999"]
        assert not is_covered(app, serial)

    def test_B2_each_option_is_covered_with_the_bundle(self, app: LifecycleApplication, site_id: UUID) -> None:
        serial = unit(app, "BDL0003", bundle=BUNDLE)
        answer = app.registrations.register_bundle(site_id, serial, ["opt0002", "OPT0001"])
        assert answer["ticket_model"] == "AT-x510-DS5" and sorted(answer["option_serials"]) == ["OPT0001", "OPT0002"]
        assert all(is_covered(app, s) for s in (serial, "OPT0001", "OPT0002"))

    def test_B1_a_unit_that_is_not_a_bundle_is_refused(self, app: LifecycleApplication, site_id: UUID) -> None:
        with pytest.raises(NotABundle):
            app.registrations.register_bundle(site_id, unit(app, "SN0006"), [])


class TestPreviewForConfirmation:
    """The portal's confirmation screens: the command's own decision, nothing saved."""

    def test_T2_P1_ticket_preview_shows_normalised_serial_model_and_period_and_registers_nothing(
        self, app: LifecycleApplication, site_id: UUID
    ) -> None:
        serial = unit(app, "SNPREVIEW0000001")
        sold = ticket(app, "10000101")
        answer = app.registrations.preview_ticket(site_id, "１０００ ０１０１", "AB12CD", "S/N:snpreview0000001 A1")
        assert answer["serial"] == serial and answer["model"] == "AT-x510" and answer["ticket_id"] == sold
        assert (answer["period"]["start"], answer["period"]["end"]) == (date(2026, 12, 1), date(2027, 12, 31))
        assert not is_used(app, sold) and not is_covered(app, serial)
        # what was confirmed then registers, the same
        registered = app.registrations.register_ticket(site_id, sold, "AB12CD", "S/N:snpreview0000001 A1")
        assert registered["period"] == answer["period"]

    def test_T4_ticket_preview_refuses_as_the_command_does(self, app: LifecycleApplication, site_id: UUID) -> None:
        other_product = unit(app, "SNPREVIEW0000002", code_no="54321-01")
        with pytest.raises(ProductCodeMismatch):
            app.registrations.preview_ticket(site_id, ticket(app, "10000102"), "AB12CD", other_product)

    def test_B2_bundle_preview_shows_ticket_model_and_covers_nothing(
        self, app: LifecycleApplication, site_id: UUID
    ) -> None:
        serial = unit(app, "BDLPREVIEW", bundle=BUNDLE)
        answer = app.registrations.preview_bundle(site_id, serial, ["OPT0001", "OPT0002"])
        assert answer["ticket_model"] == "AT-x510-DS5"
        assert not any(is_covered(app, s) for s in (serial, "OPT0001", "OPT0002"))
        with pytest.raises(BundleOptionsMissing):
            app.registrations.preview_bundle(site_id, serial, [])

    def test_R3_renewal_preview_shows_the_continued_period_and_uses_no_ticket(
        self, app: LifecycleApplication, site_id: UUID
    ) -> None:
        serial = unit(app, "SNPREVIEW0000003")
        app.registrations.register_ticket(site_id, ticket(app, "10000103"), "AB12CD", serial)
        renewal = ticket(app, "10000104", kind="renewal")
        app.clock.set(datetime(2027, 11, 1, 10, tzinfo=TOKYO))  # inside the window (opens 2027-10-01)
        answer = app.registrations.preview_renewal(serial, renewal, "AB12CD")
        assert (answer["period"]["start"], answer["period"]["end"]) == (date(2028, 1, 1), date(2028, 12, 31))
        assert not is_used(app, renewal)
