"""Issue 11, deliverable 7: a `lifecycle worker` frozen with SIGSTOP in the middle of a send
(its SMTP transaction open, its claim on the timer running out) while it also leads the
scheduler; a second worker takes over the scheduling and the mail once the claim and the
leadership have run out, and sends it; then the first is resumed with SIGCONT and, finding
its claim gone, sends nothing. Every mail reaches the SMTP server once.

What guards a send in progress is the timer row's claim (LIFECYCLE_NOTIFICATION_CLAIM_SECONDS):
the scheduler enqueues a pending timer again once its claim has run out, and another
worker may claim it then. A process that stops answering also loses the scheduler's
leadership (an advisory lock whose session the server ends after
LIFECYCLE_LEADER_TIMEOUT_SECONDS idle). Both are short here."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.faults.mail_stack import MailStack, wait_until

pytestmark = pytest.mark.postgres

MAILS = 5
CLAIM_SECONDS = 3.0
LEADER_TIMEOUT_SECONDS = 3.0


def all_threads_stopped(pid: int) -> bool:
    """Whether every thread of the process shows state T (stopped by a signal) in /proc."""
    states = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        stat = (task / "stat").read_text()
        states.add(stat[stat.rindex(")") + 2])
    return states == {"T"}


def test_a_worker_stopped_past_its_claim_loses_the_mail_to_another_and_resumed_sends_nothing(
    make_stack: Callable[..., MailStack],
) -> None:
    stack: MailStack = make_stack(
        notification_claim_seconds=CLAIM_SECONDS,
        notification_requeue_seconds=2.0,
        leader_timeout_seconds=LEADER_TIMEOUT_SECONDS,
    )
    expected = stack.register(MAILS)

    # The first worker alone: it leads the scheduler and takes the first batch. It is frozen
    # when the SMTP server sees its MAIL FROM: claimed and rendered, nothing delivered yet.
    stopped = threading.Event()
    stopped_at = 0.0

    def freeze(_: str) -> None:
        nonlocal stopped_at
        if not stopped.is_set():
            pid = stack.workers[-1].pid  # the first worker, the only one yet
            os.kill(pid, signal.SIGSTOP)
            # The MAIL FROM is answered only once the worker is seen stopped: a loaded host
            # may take a while to stop every thread of it.
            wait_until(lambda: all_threads_stopped(pid), 10, "the first worker stopped")
            stopped_at = time.monotonic()
            stopped.set()

    # Set before the worker starts: it may send before start_worker has seen it up.
    stack.sink.on_mail = freeze
    first = stack.start_worker("first", threads=1)
    wait_until(stopped.is_set, 30, "the first worker's first send")
    stack.sink.on_mail = None
    held = [m for m, row in stack.timers().items() if row["attempts"]]
    # Its batch (the mail it was sending among them): claimed, with their messages recorded.
    assert 1 <= len(held) <= MAILS

    second = stack.start_worker("second", threads=2)
    wait_until(lambda: {m.message_id for m in stack.sink.snapshot()} >= expected, 30, "every mail, sent by the second")
    all_sent_after = time.monotonic() - stopped_at
    os.kill(first.pid, signal.SIGCONT)
    resumed_at = time.monotonic()
    received = stack.sink.quiet_for(2.0)
    copies = stack.sink.copies_by_message_id()
    timers = stack.timers()
    print(f"\nworker SIGSTOPped at MAIL FROM for {resumed_at - stopped_at:.1f}s (claim {CLAIM_SECONDS:.0f}s, "
          f"leadership {LEADER_TIMEOUT_SECONDS:.0f}s): the other worker had sent all {MAILS} mails "
          f"{all_sent_after:.1f}s after the stop; after SIGCONT {len(received)} deliveries of {len(copies)} "
          f"Message-IDs")
    assert set(copies) == expected
    assert max(copies.values()) == 1, copies
    assert {row["state"] for row in timers.values()} == {"sent"}
    assert all(timers[m]["interrupted"] == 1 for m in held)  # taken over once, after the claims ran out
    assert stack.recorded() == {m: 1 for m in expected}
    wait_until(lambda: "nothing sent, left to the worker holding it now" in first.text(), 10,
               "the resumed worker's line about its lost claim")
    assert first.process.poll() is None and second.process.poll() is None
    for worker in (first, second):
        assert "Traceback" not in worker.text(), worker.text()[-3000:]
