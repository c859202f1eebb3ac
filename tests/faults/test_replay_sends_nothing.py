"""Issue 11, deliverable 7: replaying the whole history into fresh projections sends no mail.
On a store whose mails were sent by a real `lifecycle worker`, the operator's rebuilds
(`lifecycle projections rebuild`, `lifecycle timers rebuild`), with the workers stopped and
while one runs, and a fresh schema holding only a copy of the log (as a restore of the log
alone would), tailed from its first event by a new worker: the SMTP server receives nothing
new, while the mails that were due and not yet sent are sent, once.

A rebuilt timer table derives every timer again from the log, and the mail-sent events in
the log settle them as sent (lifecycle/adapters/timer_store.py); a delivery of a timer whose
event is in the log sends nothing (lifecycle/mail/sender.py)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import psycopg
import pytest

from lifecycle.bootstrap import build_application
from tests.faults.mail_stack import MailStack, wait_until

pytestmark = pytest.mark.postgres

SENT_FIRST = 20  # sent before anything is rebuilt
DUE_UNSENT = 10  # made due while no worker runs, before the rebuilds
REQUEUE_SECONDS = 1.0
QUIET_SECONDS = REQUEUE_SECONDS + 1.5  # many scheduler runs, and past the requeue: time to send anything wrongly


def rebuild(stack: MailStack, *what: str) -> list[str]:
    """The operator's rebuilds (`projections`, `timers`), as commands; answers what they printed."""
    lines = []
    for status, out, err in stack.commands(*((name, "rebuild") for name in what)):
        assert status == 0 and "Traceback" not in err, err[-3000:]
        lines += out.splitlines()
    return lines


def test_replaying_all_history_into_fresh_projections_sends_no_mail_and_due_ones_once(
    make_stack: Callable[..., MailStack],
) -> None:
    stack: MailStack = make_stack(notification_requeue_seconds=REQUEUE_SECONDS)
    sink = stack.sink

    # A store with mails sent.
    sent_first = stack.register(SENT_FIRST)
    worker = stack.start_worker("before")
    wait_until(lambda: {m.message_id for m in sink.snapshot()} >= sent_first, 30, "the first mails")
    sink.quiet_for(0.5)
    worker.stop()
    # Due, not sent: no worker runs.
    due_unsent = stack.register(DUE_UNSENT)
    assert len(sink.snapshot()) == SENT_FIRST

    # 1. Everything rebuilt with no worker running, then a worker: only the due ones go.
    printed = rebuild(stack, "projections", "timers")
    assert {row["state"] for m, row in stack.timers().items() if m in sent_first} == {"sent"}
    worker = stack.start_worker("after-rebuild")
    wait_until(lambda: {m.message_id for m in sink.snapshot()} >= sent_first | due_unsent, 30, "the due mails")
    after_first_rebuild = len(sink.quiet_for(QUIET_SECONDS))

    # 2. The timers rebuilt again while that worker runs its scheduler: nothing goes.
    printed += rebuild(stack, "timers")
    after_second_rebuild = len(sink.quiet_for(QUIET_SECONDS))
    worker.stop()

    # 3. A fresh schema holding only a copy of the log: a new worker builds its timer table
    # there from the first event; nothing goes.
    fresh = stack.on_schema(f"t_{uuid.uuid4().hex[:12]}")
    copied = copy_log(stack, fresh)
    tail = fresh.start_worker("fresh-schema")
    wait_until(lambda: len(fresh.timers_in_log()) == SENT_FIRST + DUE_UNSENT, 30, "the fresh timer table")
    after_fresh = len(sink.quiet_for(QUIET_SECONDS))
    tail.stop()

    copies = sink.copies_by_message_id()
    print(f"\nreplays: {SENT_FIRST} mails sent, {DUE_UNSENT} due and unsent; after rebuilding everything "
          f"{after_first_rebuild - SENT_FIRST} sent (the due ones); after rebuilding the timers again under a "
          f"running worker {after_second_rebuild - after_first_rebuild} more; a fresh schema tailing a copy of the log "
          f"({copied} events) {after_fresh - after_second_rebuild} more; {len(sink.snapshot())} deliveries of "
          f"{len(copies)} Message-IDs\n  " + "\n  ".join(printed))
    assert set(copies) == sent_first | due_unsent
    assert max(copies.values()) == 1, copies
    assert after_first_rebuild == SENT_FIRST + DUE_UNSENT
    assert after_second_rebuild == after_first_rebuild
    assert after_fresh == after_second_rebuild
    assert {row["state"] for row in stack.timers().values()} == {"sent"}
    assert {row["state"] for row in fresh.timers().values()} == {"sent"}
    assert stack.recorded() == {m: 1 for m in sent_first | due_unsent}
    for worker in stack.workers:
        assert "Traceback" not in worker.text(), worker.text()[-3000:]


def copy_log(source: MailStack, target: MailStack) -> int:
    """The events and snapshots of `source`'s schema into `target`'s, whose tables are made
    as a first start makes them; answers the number of events copied."""
    build_application(target.settings).close()
    old, new = source.settings.database_schema, target.settings.database_schema
    with psycopg.connect(source.settings.database_url, autocommit=True) as conn:
        for table in ("lifecycle_events", "lifecycle_snapshots"):
            conn.execute(f'INSERT INTO "{new}".{table} SELECT * FROM "{old}".{table}')
        conn.execute(f"""SELECT setval(pg_get_serial_sequence('"{new}".lifecycle_events', 'notification_id'),
                         (SELECT max(notification_id) FROM "{new}".lifecycle_events))""")
        return conn.execute(f'SELECT count(*) FROM "{new}".lifecycle_events').fetchone()[0]
