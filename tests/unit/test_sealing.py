"""Personal fields sealed per data subject where events are encoded (docs/privacy.md): what is
stored, what a forgotten subject's fields read as, and that a sealed value opens only where it
was sealed (its subject, its event type, its field)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timezone
from uuid import uuid4

import pytest
from eventsourcing.persistence import StoredEvent

from lifecycle.aggregates.accounts import Account
from lifecycle.aggregates.contract import Contract, FaultContact, Site
from lifecycle.aggregates.index import Index, email_key
from lifecycle.application import LifecycleApplication
from lifecycle.application.sealing import SealBroken
from lifecycle.domain.privacy import ERASED, UNREADABLE, SubjectKind

NOW = datetime(2026, 11, 20, 1, tzinfo=timezone.utc)


def a_site(**overrides: str) -> Site:
    fields = dict(name="東京本社", postal_code="1000001", prefecture="東京都", city="千代田区", street="千代田1-1",
                  building="サンプルビル3F", person="佐藤 花子", phone="03-1234-5678", email="hanako@example.co.jp")
    return Site(site_id=uuid4(), **{**fields, **overrides})


def stored_state(stored: StoredEvent) -> dict:
    return json.loads(stored.state)


def signed_up(app: LifecycleApplication) -> Account:
    return Account(email="taro@example.jp", password_hash="h", name="山田 太郎", company_name="株式会社サンプル",
                   phone="03-1111-2222", confirmation_expires_at=NOW)


def test_APPI_personal_fields_are_stored_sealed_and_the_rest_in_clear(application: LifecycleApplication) -> None:
    account = signed_up(application)
    [event] = account.collect_events()
    stored = application.mapper.to_stored_event(event)
    text = stored.state.decode()
    for value in ("taro@example.jp", "山田 太郎", "03-1111-2222"):
        assert value not in text and json.dumps(value)[1:-1] not in text
    assert stored_state(stored)["company_name"] == "株式会社サンプル"  # not personal: in clear
    assert stored_state(stored)["email"]["_type_"] == "sealed"
    decoded = application.mapper.to_domain_event(stored)
    assert (decoded.email, decoded.name, decoded.phone) == ("taro@example.jp", "山田 太郎", "03-1111-2222")


def test_APPI_the_email_index_key_is_sealed_under_the_account(application: LifecycleApplication) -> None:
    account = signed_up(application)
    [claimed] = Index(email_key("taro@example.jp"), account.id).collect_events()
    stored = application.mapper.to_stored_event(claimed)
    assert "taro@example.jp" not in stored.state.decode()
    assert application.mapper.to_domain_event(stored).key == email_key("taro@example.jp")
    application.personal_keys.destroy(str(account.id), NOW)
    assert application.mapper.to_domain_event(stored).key == ERASED


def test_APPI_a_sealed_value_moved_to_another_subject_or_field_does_not_open(application: LifecycleApplication) -> None:
    contract = Contract(contract_number="SU00000001", account_id=uuid4(), name="株式会社サンプル")
    mine, theirs = a_site(), a_site(person="田中 一郎")
    contract.add_site(mine)
    contract.add_site(theirs)
    _, added_mine, added_theirs = contract.collect_events()
    stored_mine = application.mapper.to_stored_event(added_mine)
    stored_theirs = application.mapper.to_stored_event(added_theirs)
    state_mine, state_theirs = stored_state(stored_mine), stored_state(stored_theirs)

    # Their person's sealed value copied into my site's event: it does not open as mine.
    site_of = lambda state: state["site"]["_data_"]  # noqa: E731
    site_of(state_mine)["person"] = site_of(state_theirs)["person"]
    moved = replace(stored_mine, state=json.dumps(state_mine).encode())
    assert application.mapper.to_domain_event(moved).site.person == UNREADABLE
    # My own phone copied into my e-mail field: it does not open either.
    state_mine = stored_state(stored_mine)
    site_of(state_mine)["email"] = site_of(state_mine)["phone"]
    moved = replace(stored_mine, state=json.dumps(state_mine).encode())
    assert application.mapper.to_domain_event(moved).site.email == UNREADABLE
    # And the sealer itself refuses: the associated data names subject, event type and field.
    sealed = application.mapper.sealer.seal(str(mine.site_id), "topic", "person", "佐藤 花子")
    with pytest.raises(SealBroken):
        application.mapper.sealer.open(str(theirs.site_id), "topic", "person", sealed)
    with pytest.raises(SealBroken):
        application.mapper.sealer.open(str(mine.site_id), "another topic", "person", sealed)
    assert application.mapper.sealer.open(str(mine.site_id), "topic", "person", sealed) == "佐藤 花子"


def test_APPI_a_forgotten_subject_reads_as_erased_and_the_others_do_not(application: LifecycleApplication) -> None:
    contract = Contract(contract_number="SU00000002", account_id=uuid4(), name="株式会社サンプル")
    site = a_site()
    contract.add_site(site)
    contact = FaultContact(uuid4(), site.site_id, "株式会社サンプル", "鈴木 一郎", "03-2345-6789", "noc@example.co.jp",
                           "ichiro@example.co.jp", postal_code="1000001", prefecture="東京都", city="千代田区",
                           street="千代田1-1")
    contract.add_fault_contact(contact)
    stored = [application.mapper.to_stored_event(e) for e in contract.collect_events()]
    snapshot = application.mapper.to_stored_event(Contract.Snapshot.take(contract))
    assert "佐藤 花子" not in snapshot.state.decode() and "noc@example.co.jp" not in snapshot.state.decode()

    application.personal_keys.destroy(str(site.site_id), NOW)
    site_added, contact_added = (application.mapper.to_domain_event(s) for s in stored[1:])
    assert (site_added.site.person, site_added.site.street, site_added.site.city) == (ERASED, ERASED, "千代田区")
    assert contact_added.contact.mail1 == "noc@example.co.jp"
    restored = application.mapper.to_domain_event(snapshot).state
    assert restored["sites"][str(site.site_id)].person == ERASED
    assert restored["fault_contacts"][str(contact.contact_id)].person == "鈴木 一郎"


def test_APPI_a_site_given_a_new_person_after_being_forgotten_gets_a_new_key(application: LifecycleApplication) -> None:
    contract = Contract(contract_number="SU00000003", account_id=uuid4(), name="株式会社サンプル")
    site = a_site()
    contract.add_site(site)
    contract.erase_personal_data(SubjectKind.SITE_PERSON, site.site_id, "test")
    contract.change_site(site.site_id, {"person": "新任 次郎"})
    events = contract.collect_events()
    first = application.mapper.to_stored_event(events[1])
    application.personal_keys.destroy(str(site.site_id), NOW)
    changed = application.mapper.to_stored_event(events[-1])  # sealed after the erasure: a new key
    assert application.mapper.to_domain_event(first).site.person == ERASED
    assert application.mapper.to_domain_event(changed).changes["person"] == "新任 次郎"
    assert contract.site(site.site_id).person == "新任 次郎"


def test_APPI_erasing_twice_is_refused(application: LifecycleApplication) -> None:
    from lifecycle.domain.errors import AlreadyForgotten

    account = signed_up(application)
    account.erase_personal_data("test")
    assert (account.email, account.status) == (ERASED, "erased")
    with pytest.raises(AlreadyForgotten):
        account.erase_personal_data("test")
