"""The periodic scheduler: bring the timer table up to the log, then hand every due timer's
notification id to the broker. It keeps no state of its own: after a restart of Redis, the
workers or the API it finds the same pending rows; a message the broker lost is enqueued
again once `requeue_seconds` have passed since it was enqueued, and the mail of a worker
that died while holding it as soon as its claim has run out."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from uuid import UUID

from lifecycle.availability import OutageLog, is_outage
from lifecycle.background import BackgroundThread
from lifecycle.ports import Clock, Leadership, TimerRow, TimerStore

log = logging.getLogger(__name__)


class TimerScheduler(BackgroundThread):
    thread_name = "timer-scheduler"
    join_seconds = 30

    def __init__(
        self,
        catch_up: Callable[[], object],  # brings the timer table up to the log
        store: TimerStore,
        enqueue: Callable[[Sequence[UUID]], None],
        clock: Clock,
        *,
        interval_seconds: float,
        requeue_seconds: float,
        batch_size: int = 1000,
        wall_clock: Clock,
        leadership: Leadership | None = None,
    ) -> None:
        self.catch_up = catch_up
        self.store = store
        self.enqueue = enqueue
        self.clock = clock  # the domain's: what is due
        self.wall_clock = wall_clock  # when a message was enqueued
        self.interval = interval_seconds
        self.requeue = timedelta(seconds=requeue_seconds)
        self.batch_size = batch_size
        # With several processes on PostgreSQL, one of them runs the loop at a time (the
        # others would only redo its work and lose the compare-and-set on the timers).
        self.leadership = leadership or Leadership()
        self.runs = 0
        self.is_leader = False  # this process runs the loop now (health)
        self.last_run_at: datetime | None = None  # wall clock, of the last run that finished
        self._outage = OutageLog(log, "scheduler")
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self, as_of: datetime | None = None) -> list[TimerRow]:
        """Fire every timer due by `as_of` (default: now); answers the timers fired."""
        self.catch_up()
        fired: list[TimerRow] = []
        while True:
            now = self.wall_clock.now()
            rows = self.store.take_due(as_of or self.clock.now(), now, now - self.requeue, self.batch_size)
            if not rows:
                return fired
            ids = [row.notification_id for row in rows]
            try:
                self.enqueue(ids)
            except Exception:
                self.store.forget_enqueue(ids)
                raise
            fired += rows
            if len(rows) < self.batch_size:
                return fired

    # --- as a background service --------------------------------------------------------

    def wake(self) -> None:
        self._wake.set()

    @property
    def running_here(self) -> bool:
        return self._thread is not None

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self.is_leader = self.leadership.acquire()
                if not self.is_leader:
                    self._stopping.wait(self.interval)
                    continue
                self.runs += 1
                fired = self.run_once()
                self.last_run_at = self.wall_clock.now()
                self._outage.succeeded()
                if fired:
                    log.info("scheduler: enqueued %d due notification(s)", len(fired))
            except Exception as error:
                if is_outage(error):  # the store or the broker is away: one line per outage
                    self._outage.failed(error)
                else:
                    log.exception("scheduler: run failed; trying again in %.1fs", self.interval)
            self._wake.wait(self.interval)
            self._wake.clear()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()  # the loop waits on _wake: it sees _stopping at once
        super().stop()
        self.leadership.release()
