"""Contract snapshots as the company grows (issue 12, item 7): each snapshot holds the whole
contract, so they come further apart as it grows and hold each registration compactly; a
contract loaded from one is the contract its events make, and still applies the rules.
Snapshots stored in the earlier form still load."""

from __future__ import annotations

from dataclasses import fields
from datetime import date, datetime
from uuid import uuid4

import pytest
from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder, StoredEvent, UUIDAsHex
from eventsourcing.utils import get_topic

from lifecycle.aggregates.contract import Contract, FaultContact, Registration, Site
from lifecycle.aggregates.layered import LayeredMap
from lifecycle.aggregates.shipments import OptionUnit
from lifecycle.application import LifecycleApplication
from lifecycle.application.app import snapshot_due
from lifecycle.application.transcodings import VALUE_TYPES, DateAsISO, RegistrationAsRow, dataclass_transcoding
from lifecycle.domain.dates import TOKYO
from lifecycle.domain.errors import NotRegistered, RenewalWindowClosed
from lifecycle.domain.periods import RenewalPolicy, SupportPeriod
from tests.unit.test_contract_aggregate import CONTACT, SITE

PERIOD = SupportPeriod(date(2026, 12, 1), date(2027, 11, 30))


def contract_with_contact() -> tuple[Contract, object]:
    contract = Contract(contract_number="SU00000001", account_id=uuid4(), name="株式会社サンプル")
    site_id = uuid4()
    contract.add_site(Site(site_id=site_id, **SITE))
    contract.add_fault_contact(FaultContact(uuid4(), site_id, **CONTACT))
    return contract, site_id


def register(contract: Contract, site_id: object, n: int) -> None:
    contract.register_ticket(site_id=site_id, serial=f"BN{n:014d}", ticket_id=f"{10_000_000 + n:08d}",
                             code_no="1234501", model="AT-x510-28GTX", service="デリバリースタンダード",
                             term_years=1, sold_on=date(2026, 11, 10), period=PERIOD,
                             registered_on=date(2026, 11, 20))


def replayed(application: LifecycleApplication, contract: Contract, version: int | None = None) -> Contract:
    """The contract from its history (up to `version`), no snapshot."""
    aggregate = None
    for domain_event in application.events.get(contract.id, lte=version):
        aggregate = domain_event.mutate(aggregate)
    assert isinstance(aggregate, Contract)
    return aggregate


def snapshot_versions(application: LifecycleApplication, contract: Contract) -> list[int]:
    assert application.snapshots is not None
    return [s.originator_version for s in application.snapshots.get(contract.id)]


def test_snapshots_come_further_apart_as_the_contract_grows() -> None:
    due = [v for v in range(1, 7_000) if snapshot_due(v, 100)]
    assert due == [*range(100, 900, 100), 1000, 1200, 1400, 1600, 2000, 2400, 2800, 3200, 4000, 4800, 5600, 6400]
    for length in (1_000, 10_000, 50_000, 200_000):
        due = [v for v in range(1, length + 1) if snapshot_due(v, 100)]
        # What all the snapshots hold, counted in events, per event: flat as the contract grows
        # (every 100 events it was length / 200: 1,000 for a 200,000-event contract).
        assert sum(due) / length < 8, length
        # A cold load replays at most a quarter of the contract after its latest snapshot.
        gaps = [later - earlier for earlier, later in zip(due, due[1:])]
        assert all(gap <= max(100, v // 4) for gap, v in zip(gaps, due[1:])), length


def test_a_contract_saved_one_event_at_a_time_is_snapshotted_at_the_growing_intervals(
    application: LifecycleApplication,
) -> None:
    contract, site_id = contract_with_contact()
    application.save(contract)
    n = 0
    while contract.version < 1_700:
        register(contract, site_id, n)
        application.save(contract)
        n += 1
    assert snapshot_versions(application, contract) == [*range(100, 900, 100), 1000, 1200, 1400, 1600]
    assert application.snapshots is not None
    latest = list(application.snapshots.get(contract.id, desc=True, limit=1))[0].mutate(None)
    assert latest.version == 1600 and latest.__dict__ == replayed(application, contract, 1600).__dict__


def test_a_save_that_reaches_a_snapshot_point_is_snapshotted_once_as_saved(application: LifecycleApplication) -> None:
    contract, site_id = contract_with_contact()
    for n in range(250):  # one save past the points at 100 and 200
        register(contract, site_id, n)
    application.save(contract)
    assert snapshot_versions(application, contract) == [contract.version] == [253]


def test_a_snapshot_holds_each_registration_in_a_quarter_of_a_kilobyte(application: LifecycleApplication) -> None:
    """The dataclass form took 613 bytes a registration: 3 MB for 5,000, written every 100 events."""
    contract, site_id = contract_with_contact()
    for n in range(397):
        register(contract, site_id, n)
    application.save(contract)
    assert application.snapshots is not None
    stored = application.snapshots.recorder.select_events(contract.id, desc=True, limit=1)[0]
    assert stored.originator_version == 400
    assert len(stored.state) / 397 < 260
    assert b'"registration_row"' in stored.state and b'"Registration"' not in stored.state


def test_a_registration_row_keeps_every_field(application: LifecycleApplication) -> None:
    contract, site_id = contract_with_contact()
    options = (OptionUnit("OP0001", "1234502", "PSU"), OptionUnit("OP0002", "1234503", "SFP"))
    contract.register_bundle(site_id, "BD0001", "1234501", "AT-x510", "S", 3, date(2026, 11, 10), "TM-3",
                             options, PERIOD, date(2026, 11, 20))
    contract.renew("BD0001", "90000001", "オンサイト", 1, PERIOD.continued(12), date(2027, 9, 1), RenewalPolicy())
    register(contract, site_id, 1)
    transcoder = application.mapper.transcoder
    for registration in contract.registrations.values():
        row = RegistrationAsRow().encode(registration)
        assert len(row) == len(fields(Registration)) + 1  # the period takes two: a new field needs a place
        assert transcoder.decode(transcoder.encode(registration)) == registration
    renewed = contract.registration("BD0001")
    assert renewed.covered_from == PERIOD.start != renewed.period.start and renewed.options == options


def test_a_contract_with_many_registrations_loads_from_its_snapshot_and_applies_the_rules(
    application: LifecycleApplication,
) -> None:
    contract, site_id = contract_with_contact()
    for n in range(1_000):
        register(contract, site_id, n)
    mail_id = uuid4()
    contract.record_service_in_notified(mail_id, "BN00000000000007", ["a@example.co.jp"], "<m@x>",
                                        datetime(2026, 12, 2, 10, tzinfo=TOKYO))
    contract.upgrade_service_level("BN00000000000009", "オンサイト", "Q12")
    application.save(contract)
    assert snapshot_versions(application, contract) == [1005]

    loaded = application.repository.get(contract.id)
    assert isinstance(loaded.registrations, LayeredMap) and isinstance(loaded.notifications_sent, LayeredMap)
    assert loaded.registrations == replayed(application, contract).registrations == contract.registrations
    assert list(loaded.registrations)[:2] == ["BN00000000000000", "BN00000000000001"]
    assert loaded.registration("BN00000000000009").service == "オンサイト"
    assert loaded.has_notified(mail_id) and not loaded.has_notified(uuid4())
    with pytest.raises(NotRegistered):
        loaded.registration("BN99999999999999")
    policy = RenewalPolicy()
    with pytest.raises(RenewalWindowClosed):  # opens three months before the end
        loaded.renew("BN00000000000500", "90000001", "S", 1, PERIOD.continued(12), date(2027, 8, 31), policy)
    loaded.renew("BN00000000000500", "90000001", "S", 1, PERIOD.continued(12), date(2027, 9, 1), policy)
    register(loaded, site_id, 1_000)
    application.save(loaded)
    again = application.repository.get(contract.id)
    assert len(again.registrations) == 1_001
    assert again.registration("BN00000000000500").renewal_ticket_ids == ("90000001",)


@pytest.mark.parametrize("with_mails", [True, False], ids=["mails recorded", "before mails were recorded"])
def test_snapshots_stored_in_the_first_form_still_load(application: LifecycleApplication, with_mails: bool) -> None:
    """v1 snapshots held plain dicts, each registration in the dataclass form, and at first
    no `notifications_sent`; they are upcast when read."""
    contract, site_id = contract_with_contact()
    for n in range(50):
        register(contract, site_id, n)
    mail_id = uuid4()
    if with_mails:
        contract.record_service_in_notified(mail_id, "BN00000000000003", ["a@example.co.jp"], "<m@x>",
                                            datetime(2026, 12, 2, 10, tzinfo=TOKYO))
    application.save(contract)
    snapshot = Contract.Snapshot.take(contract)
    v1_state = {name: value for name, value in snapshot.state.items() if name != "class_version"}
    v1_state["registrations"] = contract.registrations.as_dict()
    if with_mails:
        v1_state["notifications_sent"] = contract.notifications_sent.as_dict()
    else:
        del v1_state["notifications_sent"]
    v1 = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DatetimeAsISO(), DateAsISO(), *map(dataclass_transcoding, VALUE_TYPES)):
        v1.register(transcoding)
    state = v1.encode({"timestamp": snapshot.timestamp, "topic": snapshot.topic, "state": v1_state})
    assert b'"_type_":"Registration"' in state
    assert application.snapshots is not None
    application.snapshots.recorder.insert_events(
        [StoredEvent(contract.id, contract.version, get_topic(Contract.Snapshot), state)]
    )
    contract.renew("BN00000000000004", "90000001", "S", 1, PERIOD.continued(12), date(2027, 9, 1), RenewalPolicy())
    application.save(contract)

    loaded = application.repository.get(contract.id)  # the v1 snapshot and the renewal after it
    assert loaded.__dict__ == replayed(application, contract).__dict__
    assert loaded.has_notified(mail_id) is with_mails
    assert loaded.registration("BN00000000000004").renewal_ticket_ids == ("90000001",)
