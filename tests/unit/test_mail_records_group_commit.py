"""M-4: mails recorded by several sending threads at the same moment share one transaction,
each thread returning only once its own record is committed; a contract offered twice never
shares a save with itself, and a contract left over from a failed save is loaded afresh."""

from __future__ import annotations

import threading
from datetime import date, datetime
from uuid import uuid4

from lifecycle.aggregates.contract import Contract, FaultContact, Site
from lifecycle.application import LifecycleApplication
from lifecycle.domain.dates import TOKYO
from lifecycle.domain.periods import SupportPeriod

NOW = datetime(2026, 11, 24, 10, tzinfo=TOKYO)
SITE = dict(name="本社", postal_code="1000001", prefecture="東京都", city="千代田区", street="1-1",
            building="", person="佐藤", phone="03-1234-5678", email="s@example.co.jp")
CONTACT = dict(company="C", postal_code="1000001", prefecture="東京都", city="千代田区", street="1",
               building="", person="p", phone="03-1234-5678", mail1="noc@example.co.jp", mail2="")
THREADS = 4


def saved_contract(application: LifecycleApplication, number: int) -> Contract:
    contract = Contract(contract_number=f"SU{number:08d}", account_id=uuid4(), name="株式会社サンプル")
    site_id = uuid4()
    contract.add_site(Site(site_id=site_id, **SITE))
    contract.add_fault_contact(FaultContact(uuid4(), site_id, **CONTACT))
    contract.register_ticket(site_id, "SN1", "12345678", "12345-01", "AT-x510", "デリバリースタンダード", 1,
                             date(2026, 11, 10), SupportPeriod(date(2026, 12, 1), date(2027, 12, 31)),
                             date(2026, 11, 20))
    application.save(contract)
    return application.companies.company(contract.id)


def record(application: LifecycleApplication, contract: Contract | None, contract_id, notification_id):  # noqa: ANN001, ANN201
    return application.mail_records.record_contract_mail_sent(
        contract_id, lambda c: c.record_service_in_notified(notification_id, "SN1", ["noc@example.co.jp"],
                                                              f"<{notification_id}@x>", NOW), contract=contract)


def test_M4_threads_recording_at_once_share_one_transaction_and_each_mail_is_recorded(
    application: LifecycleApplication,
) -> None:
    contracts = [saved_contract(application, n) for n in range(THREADS)]
    saves: list[int] = []  # aggregates per transaction
    first_save_started, go_on = threading.Event(), threading.Event()
    save_once = application.save_once

    def counted_save(*aggregates):  # noqa: ANN002, ANN202 - the application's own save, counted
        saves.append(len(aggregates))
        if len(saves) == 1:  # the first thread's save is under way while the others arrive
            first_save_started.set()
            go_on.wait(10)
        return save_once(*aggregates)

    application.mail_records.commits._save_once = counted_save
    mails = {contract.id: uuid4() for contract in contracts}
    returned: dict = {}

    def send(contract: Contract) -> None:
        returned[contract.id] = record(application, contract, contract.id, mails[contract.id])

    first = threading.Thread(target=send, args=(contracts[0],))
    first.start()
    assert first_save_started.wait(10)
    others = [threading.Thread(target=send, args=(c,)) for c in contracts[1:]]
    for thread in others:
        thread.start()
    while len(application.mail_records.commits._offered) < THREADS - 1:
        threading.Event().wait(0.01)
    go_on.set()
    for thread in [first, *others]:
        thread.join(10)

    assert saves == [1, THREADS - 1]  # the three that arrived meanwhile: one transaction
    for contract in contracts:
        stored = application.companies.company(contract.id)
        assert stored.has_notified(mails[contract.id])
        assert returned[contract.id].version == stored.version  # the next mail is recorded on it


def test_M4_a_contract_left_over_from_a_failed_save_is_loaded_afresh(application: LifecycleApplication) -> None:
    contract = saved_contract(application, 1)
    lost = uuid4()
    contract.record_service_in_notified(lost, "SN1", ["noc@example.co.jp"], "<lost@x>", NOW)
    contract.collect_events()  # as a save that failed leaves it: the event applied, never stored
    record(application, contract, contract.id, lost)  # the same mail recorded again, on the left-over object
    stored = [e.topic for e in application.recorder.select_events(contract.id)]  # the log, not a cache
    assert sum(topic.endswith("ServiceInNotified") for topic in stored) == 1
