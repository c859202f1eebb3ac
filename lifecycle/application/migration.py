"""`lifecycle privacy migrate`: a store written before personal fields were sealed, copied
into a new, empty store with every personal field sealed (docs/privacy.md).

Events are never edited in place: the old store stays as it was (keep it, with an audit export
of it, as long as the law and the auditors require, then destroy it). The copy has the same
events in the same order (aggregate ids, versions, topics, timestamps, actors), each decoded
from the old store, encoded into the new one through the sealing mapper, read back and compared
with the original, field by field, before the next batch is copied. Mails recorded before their
recipients' subjects were (class version 1) get them here, from the contract as it stood when
the mail was recorded, so that each address is sealed under its own subject's key.

Not copied (not events): snapshots (taken again), read models and the timer table (built again
by their projections on the first start), customers' sessions (they log in again), the keys'
last use and uploaded bulk sheets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

from lifecycle.aggregates.contract import Contract

if TYPE_CHECKING:
    from lifecycle.application.app import LifecycleApplication

BATCH = 1000
MAILS = (Contract.ServiceInNotified, Contract.RenewalReminderSent)


class MigrationRefused(Exception):
    """The target is not empty, or a copied event does not read back as the original."""


@dataclass(frozen=True)
class Migrated:
    events: int
    recipients_assigned: int  # mails of class version 1 whose recipients got their subjects here


def migrate(
    source: LifecycleApplication,
    target: LifecycleApplication,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> Migrated:
    if target.recorder.max_notification_id():
        raise MigrationRefused("the target store is not empty: migrate into a new database or schema")
    head = source.recorder.max_notification_id() or 0
    contracts: dict[UUID, Any] = {}  # each contract as it stands at the event being copied
    position = copied = assigned = 0
    while True:
        notifications = source.recorder.select_notifications(start=position, limit=BATCH, inclusive_of_start=False)
        if not notifications:
            break
        originals = []
        for notification in notifications:
            domain_event = source.mapper.to_domain_event(notification)
            if isinstance(domain_event, MAILS) and len(domain_event.recipient_subjects) != len(domain_event.recipients):
                contract = contracts[domain_event.originator_id]
                site_id = contract.registrations[domain_event.serial].site_id
                vars(domain_event)["recipient_subjects"] = contract._subjects_of(site_id, domain_event.recipients)  # noqa: SLF001
                assigned += 1
            if type(domain_event).__qualname__.startswith("Contract."):
                contracts[domain_event.originator_id] = domain_event.mutate(contracts.get(domain_event.originator_id))
            originals.append(domain_event)
        reached = target.recorder.max_notification_id() or 0
        target.recorder.insert_events([target.mapper.to_stored_event(e) for e in originals])
        _verify(target, reached, originals)
        copied += len(originals)
        position = notifications[-1].id
        progress(position, head)
    return Migrated(copied, assigned)


def _verify(target: LifecycleApplication, after: int, originals: list[Any]) -> None:
    """Each copied event, read back from the new store, equals the original."""
    stored = target.recorder.select_notifications(start=after, limit=len(originals), inclusive_of_start=False)
    if len(stored) != len(originals):
        raise MigrationRefused(f"{len(originals)} events copied but {len(stored)} read back")
    for original, copied in zip(originals, stored):
        copy = target.mapper.to_domain_event(copied)
        if type(copy) is not type(original) or vars(copy) != vars(original):
            raise MigrationRefused(
                f"event {original.originator_id} v{original.originator_version} ({type(original).__name__}) does not "
                "read back from the new store as it was in the old one"
            )
