"""The Contract, Unit and Ticket aggregates on their own, and the application on the
in-memory store: invariants, replay and snapshots."""

from __future__ import annotations

from datetime import date
from uuid import uuid4

import pytest

from lifecycle.aggregates.contract import Contract, FaultContact, Site
from lifecycle.aggregates.shipments import Ticket, Unit
from lifecycle.application import LifecycleApplication
from lifecycle.domain.errors import (
    FaultContactRequired,
    NotInShipmentHistory,
    SiteNotFound,
    TicketAlreadyRegistered,
    UnitAlreadyRegistered,
)
from lifecycle.domain.periods import RenewalPolicy, SupportPeriod
from tests.scenario import CONTACT_FIELDS, SITE_FIELDS

def contract_with_site() -> tuple[Contract, object]:
    contract = Contract(contract_number="SU00000001", account_id=uuid4(), name="株式会社サンプル")
    site_id = uuid4()
    contract.add_site(Site(site_id=site_id, **SITE_FIELDS))
    return contract, site_id


def test_S5_a_site_without_fault_contact_is_not_ready_for_registrations() -> None:
    contract, site_id = contract_with_site()
    with pytest.raises(FaultContactRequired):
        contract.check_site_ready_for_registration(site_id)
    contract.add_fault_contact(FaultContact(uuid4(), site_id, **CONTACT_FIELDS))
    contract.check_site_ready_for_registration(site_id)


def test_S4_contact_for_an_unknown_site_is_refused() -> None:
    contract, _ = contract_with_site()
    with pytest.raises(SiteNotFound):
        contract.add_fault_contact(FaultContact(uuid4(), uuid4(), **CONTACT_FIELDS))


def test_S4_an_edit_that_changes_nothing_records_nothing() -> None:
    contract, site_id = contract_with_site()
    version = contract.version
    contract.change_site(site_id, {"name": "本社"})
    assert contract.version == version
    contract.change_site(site_id, {"name": "支社", "person": "佐藤"})
    assert contract.collect_events()[-1].changes == {"name": "支社"}


def test_T6_a_ticket_is_used_once() -> None:
    ticket = Ticket(ticket_id="12345678", verification_code="C", code_no="1234599", service="S",
                    term_years=1, kind="new", sold_on=date(2026, 11, 10))
    ticket.use("SERIAL1", uuid4())
    with pytest.raises(TicketAlreadyRegistered):
        ticket.use("SERIAL2", uuid4())


def test_E4_wrong_verification_code_is_not_in_the_shipment_history() -> None:
    ticket = Ticket(ticket_id="12345678", verification_code="C", code_no="1", service="S",
                    term_years=1, kind="new", sold_on=date(2026, 11, 10))
    with pytest.raises(NotInShipmentHistory):
        ticket.check_verification_code("D")


def test_T7_unit_is_free_again_only_after_its_coverage_lapsed() -> None:
    unit = Unit(serial="S1", code_no="1234501", model="M", shipped_on=date(2026, 1, 1), bundle=None, bundle_serial=None)
    policy = RenewalPolicy()
    unit.cover(uuid4(), "S1", date(2026, 12, 31), date(2026, 1, 10), policy)
    with pytest.raises(UnitAlreadyRegistered):
        unit.cover(uuid4(), "S1", date(2027, 12, 31), date(2027, 3, 31), policy)  # still renewable
    unit.cover(uuid4(), "S1", date(2028, 12, 31), date(2027, 4, 1), policy)  # lapsed: a new ticket may cover it


def test_unit_id_is_derived_from_the_serial() -> None:
    assert Unit.create_id("ABC") == Unit.create_id(serial="ABC") != Unit.create_id("ABD")


def test_contract_replayed_from_a_snapshot_equals_the_one_replayed_from_events(application: LifecycleApplication) -> None:
    """Contracts snapshot every 100 events; every value type must survive the snapshot."""
    contract, site_id = contract_with_site()
    contract.add_fault_contact(FaultContact(uuid4(), site_id, **CONTACT_FIELDS))
    for n in range(120):
        contract.register_ticket(site_id=site_id, serial=f"S{n:03d}", ticket_id=f"{n:08d}", code_no="1234501",
                                 model="M", service="S", term_years=1, sold_on=date(2026, 11, 10),
                                 period=SupportPeriod(date(2026, 12, 1), date(2027, 12, 31)),
                                 registered_on=date(2026, 11, 20))
    contract.change_site(site_id, {"street": "2-2"})
    application.save(contract)
    assert application.snapshots is not None
    snapshots = list(application.snapshots.get(contract.id))
    assert snapshots, "a snapshot was taken"
    from_snapshot = application.repository.get(contract.id)
    replayed = None
    for domain_event in application.events.get(contract.id):  # the whole history, no snapshot
        replayed = domain_event.mutate(replayed)
    assert isinstance(replayed, Contract)
    assert from_snapshot.version == replayed.version == contract.version
    assert from_snapshot.sites == replayed.sites == contract.sites
    assert from_snapshot.fault_contacts == replayed.fault_contacts == contract.fault_contacts
    assert from_snapshot.registrations == replayed.registrations == contract.registrations


def test_a_contract_saved_one_event_at_a_time_is_snapshotted_as_it_was_saved(application: LifecycleApplication) -> None:
    """The snapshot at the interval is taken from the contract just saved, not replayed:
    it must hold exactly what the events say."""
    contract, site_id = contract_with_site()
    contract.add_fault_contact(FaultContact(uuid4(), site_id, **CONTACT_FIELDS))
    application.save(contract)
    n = 0
    while contract.version < 100:
        contract.register_ticket(site_id=site_id, serial=f"S{n:03d}", ticket_id=f"{n:08d}", code_no="1234501",
                                 model="M", service="S", term_years=1, sold_on=date(2026, 11, 10),
                                 period=SupportPeriod(date(2026, 12, 1), date(2027, 12, 31)),
                                 registered_on=date(2026, 11, 20))
        application.save(contract)
        n += 1
    assert application.snapshots is not None
    snapshots = list(application.snapshots.get(contract.id))
    assert [s.originator_version for s in snapshots] == [100]
    from_snapshot = snapshots[0].mutate(None)
    replayed = None
    for domain_event in application.events.get(contract.id):
        replayed = domain_event.mutate(replayed)
    assert from_snapshot.version == replayed.version == 100
    assert from_snapshot.__dict__ == replayed.__dict__


def test_a_command_that_keeps_losing_races_is_a_409_and_changes_nothing(application: LifecycleApplication) -> None:
    from lifecycle.aggregates.index import Index
    from lifecycle.domain.errors import ConcurrentUpdate
    from lifecycle.domain.errors import Refusal

    application.save(Index("/race", uuid4()))
    attempts = []

    def decide():  # noqa: ANN202 - always saves into a version another command already took
        attempts.append(1)
        return {}, [Index("/race", uuid4())]

    with pytest.raises(ConcurrentUpdate) as refused:
        application.execute(decide, None)
    assert refused.value.kind is Refusal.CONFLICT
    assert len(attempts) == application.max_attempts
    assert len(list(application.events.get(Index.create_id("/race")))) == 1


def test_S2_S4_sites_and_contacts_stored_before_their_value_objects_still_load(
    application: LifecycleApplication,
) -> None:
    """SiteAdded and FaultContactAdded v1 carried their fields side by side; v2 carries the
    Site and FaultContact value objects. Events stored as v1 are upcast when read."""
    from eventsourcing.persistence import StoredEvent
    from eventsourcing.utils import get_topic

    contract = Contract(contract_number="SU00000001", account_id=uuid4(), name="C")
    application.save(contract)
    site_id, contact_id = uuid4(), uuid4()
    timestamp = contract.modified_on
    v1_events = [
        (Contract.SiteAdded, {"site_id": site_id, **SITE_FIELDS}),
        (Contract.FaultContactAdded, {"contact_id": contact_id, "site_id": site_id, **CONTACT_FIELDS}),
    ]
    stored = []
    for version, (cls, fields) in enumerate(v1_events, start=2):
        state = {"originator_id": contract.id, "originator_version": version, "timestamp": timestamp, **fields}
        stored.append(StoredEvent(contract.id, version, get_topic(cls), application.mapper.transcoder.encode(state)))
    application.recorder.insert_events(stored)

    loaded = application.repository.get(contract.id)
    assert loaded.site(site_id) == Site(site_id=site_id, **SITE_FIELDS)
    assert loaded.fault_contact(contact_id) == FaultContact(contact_id, site_id, **CONTACT_FIELDS)
    events = list(application.events.get(contract.id))
    assert events[1].site == loaded.site(site_id) and events[2].contact.mail1 == CONTACT_FIELDS["mail1"]
