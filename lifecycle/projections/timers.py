"""The timer table as a projection of the event log: the process managers' decisions
(`lifecycle/policies/mail_timers.py`) applied to the timer store (the port
`lifecycle.ports.TimerStore`; its SQL in `lifecycle/adapters/timer_store.py`) with the
tracking position of the last event applied, so the table can always be dropped and rebuilt
from the log."""

from __future__ import annotations

import logging
import threading
from typing import Any

from eventsourcing.application import Application
from eventsourcing.utils import get_topic

from lifecycle.domain.notifications import TimerChange
from lifecycle.policies.mail_timers import HANDLED_EVENTS, NotificationPolicies
from lifecycle.ports import PositionMoved, TimerStore
from lifecycle.progress import Progress, no_progress
from lifecycle.projections.engine.runner import TRANSIENT, EventNotApplied, FailedEvent

log = logging.getLogger(__name__)

# The timer table's row in the read models' tracking (the timer store's `Tracking`).
TIMERS_TRACKING = "notification_timers"


class TimerProjection:
    """The timer table as a projection of the event log: read the events the process
    managers handle after the table's tracking position, apply their decisions and the new
    position in one transaction. The scheduler calls `catch_up` before it looks for due
    timers (SQLite's recorder has no subscriptions in eventsourcing 9.5.6: the log is polled).

    An event the process managers cannot handle (one stored before a rule existed, say) would
    fail the same way on every poll: the table is brought up to the event before it, the stop
    is said in one log line, and timers already in the table still fire. `status` finds the
    stop from the store alone, so the API's health shows it while workers run the scheduler."""

    name = "timers"

    def __init__(
        self, application: Application[Any], store: TimerStore, policies: NotificationPolicies, batch_size: int = 5000
    ) -> None:
        self.application = application
        self.store = store
        self.policies = policies
        self.batch_size = batch_size
        self.topics = [get_topic(cls) for cls in HANDLED_EVENTS]
        self.failed_event: FailedEvent | None = None  # where this process's catch-up stopped
        self._lock = threading.Lock()

    def catch_up(self, progress: Progress = no_progress) -> int:
        """Apply every event recorded so far, up to one it cannot apply; answers how many
        were applied. `progress` hears the log position read against the log's head."""
        applied = 0
        with self._lock:
            head = self.application.recorder.max_notification_id() or 0
            while True:
                position = self.store.position()
                progress(position or 0, head)
                notifications = self.application.recorder.select_notifications(
                    start=position, limit=self.batch_size, topics=self.topics, inclusive_of_start=False
                )
                if not notifications:
                    self.failed_event = None
                    progress(max(position or 0, head), head)  # none of its events after `position`: read to the head
                    return applied
                changes: list[TimerChange] = []
                failed: FailedEvent | None = None
                for index, notification in enumerate(notifications):
                    try:
                        changes += self._changes_for(notification)
                    except EventNotApplied as stopped:
                        failed, notifications = stopped.failed, notifications[:index]
                        break
                try:
                    if notifications:
                        self.store.apply(changes, position, notifications[-1].id)
                except PositionMoved:
                    log.info("timers: another process applied these events first")
                    continue
                applied += len(notifications)
                if failed is not None:
                    self._stop_at(failed)
                    return applied

    def _changes_for(self, notification: Any) -> list[TimerChange]:
        try:
            return list(self.policies.changes_for(self.application.mapper.to_domain_event(notification)))
        except TRANSIENT:
            raise
        except Exception as error:
            raise EventNotApplied(self.name, FailedEvent.of(notification, error)) from error

    def _stop_at(self, failed: FailedEvent) -> None:
        if failed != self.failed_event:  # one line per stop, not one per poll
            log.error("%s; timers already in the table still fire", EventNotApplied(self.name, failed))
        self.failed_event = failed

    def status(self) -> dict[str, Any]:
        """Whether the table is up to the log, and the event it is stopped at, if any: found
        by trying the first event after its position (the stop is deterministic)."""
        position = self.store.position() or 0
        following = self.application.recorder.select_notifications(
            start=position, limit=1, topics=self.topics, inclusive_of_start=False
        )
        failed: FailedEvent | None = None
        if following:
            try:
                self._changes_for(following[0])
            except EventNotApplied as stopped:
                failed = stopped.failed
        return {
            "position": position,
            "state": "stopped" if failed else "behind" if following else "up_to_date",
            "failed_event": failed.as_dict() if failed else None,
        }

    def rebuild(self, progress: Progress = no_progress) -> int:
        """Drop every timer and derive them again from the whole log."""
        with self._lock:
            self.store.clear()
        return self.catch_up(progress)
