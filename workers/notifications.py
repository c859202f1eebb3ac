"""The mail machinery of one process, assembled from Settings: the timer table and its
projection, the scheduler, the sender with its mailer, and how due ids reach a sender.

- LIFECYCLE_REDIS_URL set: ids go through the Redis broker to `lifecycle worker`
  processes (which also run the scheduler); the API process only enqueues (admin routes).
- unset (the embedded default): the API process runs the scheduler and an in-process
  worker as background services, so `lifecycle serve` alone sends the mails.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from dramatiq.broker import Broker

from lifecycle.adapters.mailers import MaildirMailer, Mailer, SmtpMailer
from lifecycle.clock import Clock, SystemClock
from lifecycle.domain.errors import DomainError, Refusal
from lifecycle.leadership import leadership_for
from lifecycle.policies.delivery import NotificationSender, RetryPolicy
from lifecycle.policies.mails import MailComposer, Vendor
from lifecycle.policies.notifications import NotificationPolicies, NotificationSchedule
from lifecycle.policies.scheduler import TimerScheduler
from lifecycle.policies.timer_projection import TimerProjection
from lifecycle.policies.timers import timer_store_for
from lifecycle.settings import Settings
from workers.actors import BrokerDispatcher, declare_send_notification
from workers.in_process import InProcessWorker


class NotificationNotFound(DomainError):
    code = "NOTIFICATION_NOT_FOUND"
    kind = Refusal.NOT_FOUND
    title = "No such notification"
    message_ja = "該当する通知が見つかりません。"


class NotificationNotFailed(DomainError):
    code = "NOTIFICATION_NOT_FAILED"
    kind = Refusal.CONFLICT
    title = "Only a failed notification can be sent again"
    message_ja = "この通知は送信失敗の状態ではないため、再送できません。"


def vendor_from(settings: Settings) -> Vendor:
    return Vendor(
        name=settings.vendor_name,
        mail_from=settings.mail_from,
        call_center_name=settings.call_center_name,
        call_center_phone=settings.call_center_phone,
        call_center_mail=settings.call_center_mail,
        call_center_hours=settings.call_center_hours,
        contracts_desk_name=settings.contracts_desk_name,
        contracts_desk_mail=settings.contracts_desk_mail,
        service_desk_names=dict(settings.service_desk_names),
    )


def mailer_from(settings: Settings) -> Mailer:
    if settings.smtp_host:
        return SmtpMailer(
            settings.smtp_host,
            settings.smtp_port,
            security=settings.smtp_security,
            username=settings.smtp_username,
            password=settings.smtp_password,
            timeout=settings.smtp_timeout_seconds,
            ca_file=settings.smtp_ca_file,
        )
    return MaildirMailer(settings.mail_directory())


def redis_broker(settings: Settings) -> Broker:
    from dramatiq.brokers.redis import RedisBroker

    return RedisBroker(url=settings.redis_url, namespace=settings.redis_namespace)


class Notifications:
    def __init__(self, settings: Settings, application: Any, clock: Clock | None = None) -> None:
        clock = clock or application.clock
        if settings.smtp_timeout_seconds * 2 >= settings.notification_claim_seconds:
            raise ValueError("LIFECYCLE_NOTIFICATION_CLAIM_SECONDS must exceed twice the SMTP timeout")
        self.settings = settings
        self.clock = clock
        self.store = timer_store_for(application.recorder.datastore)
        self.store.create_tables()
        schedule = NotificationSchedule(
            renewal=application.terms.renewal,
            service_in_business_days=settings.service_in_business_days,
            send_time=settings.mail_send_time,
            one_month_reminder=settings.renewal_reminder_one_month,
            expiry_notice=settings.expiry_notice,
        )
        self.projection = TimerProjection(application, self.store, NotificationPolicies(schedule))
        self.mailer = mailer_from(settings)
        self.sender = NotificationSender(
            application,
            self.store,
            MailComposer(vendor_from(settings)),
            self.mailer,
            clock=clock,
            confirmation_url_base=settings.confirmation_url_base,
            email_change_url_base=settings.email_change_url_base,
            password_reset_url_base=settings.password_reset_url_base,
            retry=RetryPolicy(
                settings.notification_max_attempts,
                settings.notification_retry_base_seconds,
                settings.notification_retry_max_seconds,
            ),
            lease_seconds=settings.notification_claim_seconds,
        )
        self.broker: Broker | None = None
        self.in_process: InProcessWorker | None = None
        if settings.redis_url:
            self.broker = redis_broker(settings)
            self.actor = declare_send_notification(self.broker, self.sender.deliver, settings.notification_claim_seconds)
            self.dispatcher: BrokerDispatcher | InProcessWorker = BrokerDispatcher(self.actor)
        else:
            self.in_process = self.dispatcher = InProcessWorker(self.sender.deliver, settings.worker_threads)
        self.scheduler = TimerScheduler(
            self.projection,
            self.store,
            self.dispatcher.dispatch,
            clock,
            interval_seconds=settings.scheduler_interval_seconds,
            requeue_seconds=settings.notification_requeue_seconds,
            leadership=leadership_for(getattr(application.factory, "datastore", None), "timer-scheduler"),
        )

    def embedded_services(self) -> list[Any]:
        """What the API process runs itself: with no broker, the worker and the scheduler."""
        if self.in_process is None:
            return []
        return [self.in_process, self.scheduler]

    # --- what the admin routes and the CLI offer ------------------------------------------

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
        self.dispatcher.dispatch([notification_id])
        return row.as_dict()

    def rebuild(self) -> int:
        return self.projection.rebuild()

    def dispatch(self, notification_ids: Sequence[UUID]) -> None:
        self.dispatcher.dispatch(notification_ids)

    def close(self) -> None:
        self.mailer.close()
        if self.broker is not None:
            self.broker.close()


def build_notifications(settings: Settings, application: Any, clock: Clock | None = None) -> Notifications:
    return Notifications(settings, application, clock or getattr(application, "clock", None) or SystemClock())
