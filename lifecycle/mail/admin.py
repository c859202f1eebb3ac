"""Operating the mails: one notification's timer, the failed ones, sending one again, firing
the due timers now (and, as a test aid, as of another instant), rebuilding the timer table."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from lifecycle.domain.errors import NotificationNotFailed, NotificationNotFound
from lifecycle.mail.scheduler import TimerScheduler
from lifecycle.ports import Clock, TimerStore
from lifecycle.progress import Progress, no_progress


@dataclass(eq=False)
class NotificationsAdmin:
    store: TimerStore
    scheduler: TimerScheduler
    dispatch: Callable[[Sequence[UUID]], None]
    rebuild_timers: Callable[[Progress], int]
    clock: Clock

    def run_timers(self, as_of: datetime | None = None) -> list[dict[str, Any]]:
        """Fire every timer due by `as_of`: answers what was handed to the workers."""
        return [row.as_dict() for row in self.scheduler.run_once(as_of)]

    def notification(self, notification_id: UUID) -> dict[str, Any]:
        row = self.store.get(notification_id)
        if row is None:
            raise NotificationNotFound(f"Notification {notification_id} is not known.")
        return row.as_dict()

    def failed(self) -> list[dict[str, Any]]:
        return [row.as_dict() for row in self.store.failed()]

    def resend(self, notification_id: UUID) -> dict[str, Any]:
        row = self.store.resend(notification_id, self.clock.now())
        if row is None:
            state = self.notification(notification_id)["state"]
            raise NotificationNotFailed(f"Notification {notification_id} is {state}, not failed.", state=state)
        self.dispatch([notification_id])
        return row.as_dict()

    def rebuild(self, progress: Progress = no_progress) -> int:
        """Drop the timer table and derive it again from the log (sent mails stay sent);
        `progress` hears the log position read against the log's head."""
        return self.rebuild_timers(progress)
