"""M-4 on the Contract and the Account: each mail recorded once, recipients as they are at
send time, and Renewed v1 events (stored before renewed_on existed) read as v2."""

from __future__ import annotations

import json
from datetime import date, datetime
from uuid import uuid4

from eventsourcing.persistence import StoredEvent

from lifecycle.aggregates.accounts import Account
from lifecycle.aggregates.contract import Contract, FaultContact, Site
from lifecycle.bootstrap import build_application
from lifecycle.domain.dates import TOKYO
from lifecycle.domain.periods import RenewalPolicy, SupportPeriod
from lifecycle.settings import Settings
from tests.fakes import IN_MEMORY_STORE, FakePostalCodes, FixedClock, fake_hash

SITE = dict(name="本社", postal_code="1000001", prefecture="東京都", city="千代田区", street="1-1",
            building="", person="佐藤", phone="03-1234-5678", email="s@example.co.jp")
CONTACT = dict(company="C", postal_code="1000001", prefecture="東京都", city="千代田区", street="1",
               building="", person="p", phone="03-1234-5678", mail1="noc@example.co.jp", mail2="Duty@example.co.jp")
NOW = datetime(2026, 11, 24, 10, tzinfo=TOKYO)
PERIOD = SupportPeriod(date(2026, 12, 1), date(2027, 12, 31))


def registered_contract() -> tuple[Contract, object]:
    contract = Contract(contract_number="SU00000001", account_id=uuid4(), name="株式会社サンプル")
    site_id = uuid4()
    contract.add_site(Site(site_id=site_id, **SITE))
    contract.add_fault_contact(FaultContact(uuid4(), site_id, **CONTACT))
    contract.register_ticket(site_id, "SN1", "12345678", "12345-01", "AT-x510", "デリバリースタンダード", 1,
                             date(2026, 11, 10), PERIOD, date(2026, 11, 20))
    return contract, site_id


def test_M1_recipients_are_the_registrant_and_mail1_mail2_once_each() -> None:
    contract, site_id = registered_contract()
    contract.add_fault_contact(FaultContact(uuid4(), site_id, **{**CONTACT, "mail1": "duty@example.co.jp", "mail2": ""}))
    assert contract.notification_recipients("SN1", "taro@example.co.jp") == [
        "taro@example.co.jp", "noc@example.co.jp", "Duty@example.co.jp",
    ]


def test_M4_a_service_in_mail_is_recorded_once() -> None:
    contract, _ = registered_contract()
    notification_id = uuid4()
    contract.record_service_in_notified(notification_id, "SN1", ["a@x.jp"], "<m@x>", NOW)
    contract.record_service_in_notified(notification_id, "SN1", ["a@x.jp"], "<m@x>", NOW)
    recorded = [e for e in contract.collect_events() if isinstance(e, Contract.ServiceInNotified)]
    assert len(recorded) == 1
    assert (recorded[0].period, recorded[0].recipients, recorded[0].sent_at) == (PERIOD, ["a@x.jp"], NOW)
    assert contract.has_notified(notification_id)


def test_M4_a_reminder_and_a_confirmation_are_recorded_once() -> None:
    contract, _ = registered_contract()
    reminder = uuid4()
    for _ in range(2):
        contract.record_renewal_reminder_sent(reminder, "SN1", "three_months", PERIOD.end, ["a@x.jp"], "<r@x>", NOW)
    assert sum(isinstance(e, Contract.RenewalReminderSent) for e in contract.collect_events()) == 1
    account = Account("a@x.jp", "h", "山田", "会社", "03-1234-5678", NOW)
    confirmation = uuid4()
    for _ in range(2):
        account.record_confirmation_mail_sent(confirmation, ["a@x.jp"], "<c@x>", NOW)
    assert sum(isinstance(e, Account.ConfirmationMailSent) for e in account.collect_events()) == 1


def test_M1_a_renewed_event_stored_before_renewed_on_existed_reads_its_date_from_the_timestamp() -> None:
    app = build_application(Settings(secret_key="k"), clock=FixedClock(NOW), postal_codes=FakePostalCodes(),
                            password_hasher=fake_hash, store_env=IN_MEMORY_STORE)
    contract, _ = registered_contract()
    contract.renew("SN1", "87654321", "デリバリースタンダード", 1, PERIOD.continued(12), date(2027, 10, 5),
                   RenewalPolicy())
    renewed = contract.collect_events()[-1]
    assert isinstance(renewed, Contract.Renewed) and renewed.renewed_on == date(2027, 10, 5)
    stored = app.mapper.to_stored_event(renewed)
    state = json.loads(stored.state)  # no compression or cipher on this store
    del state["renewed_on"], state["class_version"]
    state["timestamp"] = {"_type_": "datetime_iso", "_data_": "2027-10-04T16:30:00+00:00"}
    v1 = StoredEvent(stored.originator_id, stored.originator_version, stored.topic, json.dumps(state).encode())
    assert app.mapper.to_domain_event(v1).renewed_on == date(2027, 10, 5)  # 01:30 on the 5th in Tokyo
