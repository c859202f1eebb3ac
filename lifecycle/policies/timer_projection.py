"""The timer table as a projection of the event log: read the events the process managers
handle after the table's tracking position, apply their decisions and the new position in
one transaction. The log is polled (SQLite's recorder has no subscriptions in
eventsourcing 9.5.6); the scheduler calls `catch_up` before it looks for due timers."""

from __future__ import annotations

import logging
import threading

from eventsourcing.application import Application
from eventsourcing.utils import get_topic

from lifecycle.policies.notifications import HANDLED_EVENTS, NotificationPolicies, TimerChange
from lifecycle.policies.timers import PositionMoved, TimerStore

log = logging.getLogger(__name__)


class TimerProjection:
    def __init__(
        self, application: Application, store: TimerStore, policies: NotificationPolicies, batch_size: int = 500
    ) -> None:
        self.application = application
        self.store = store
        self.policies = policies
        self.batch_size = batch_size
        self.topics = [get_topic(cls) for cls in HANDLED_EVENTS]
        self._lock = threading.Lock()

    def catch_up(self) -> int:
        """Apply every event recorded so far; answers how many were applied."""
        applied = 0
        with self._lock:
            while True:
                position = self.store.position()
                notifications = self.application.recorder.select_notifications(
                    start=position, limit=self.batch_size, topics=self.topics, inclusive_of_start=False
                )
                if not notifications:
                    return applied
                changes: list[TimerChange] = []
                for notification in notifications:
                    changes += self.policies.changes_for(self.application.mapper.to_domain_event(notification))
                try:
                    self.store.apply(changes, position, notifications[-1].id)
                except PositionMoved:
                    log.info("timers: another process applied these events first")
                    continue
                applied += len(notifications)

    def rebuild(self) -> int:
        """Drop every timer and derive them again from the whole log."""
        with self._lock:
            self.store.clear()
        return self.catch_up()
