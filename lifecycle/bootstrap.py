"""The one place where the service is assembled from Settings, for every kind of process:

- `bootstrap()`: the API process (application, read models and their queries, the mail
  machinery, access, bulk jobs and the background services it runs);
- `bootstrap_worker()`: a `lifecycle worker` process (dramatiq actors, scheduler, sweeper);
- `command_runtime()`: a `lifecycle` command, each part built when the command first asks;
- the `build_*` functions they share, which tests call with fakes.

Adapters (the ports of lifecycle/ports.py: clock, postal directory, mailer, broker, timer
store, credential store, bulk uploads) come in as parameters with the real ones as defaults,
so a test passes a fake from tests/fakes.py (cosmicpython's `bootstrap()`). Nothing else in
the code builds a service or picks an adapter."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property, partial
from typing import Any, Protocol
from uuid import UUID

import dramatiq
from dramatiq.broker import Broker
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from limits.storage import Storage

from lifecycle.adapters.broker import BrokerDispatcher, BulkJobDispatcher, redis_broker
from lifecycle.adapters.audit_checkpoints import SqlCheckpointStore
from lifecycle.adapters.bulk_uploads import BulkUploadStore
from lifecycle.adapters.client_addresses import ClientAddresses
from lifecycle.adapters.clock import SystemClock
from lifecycle.adapters.credentials import SqlCredentialStore
from lifecycle.adapters.database import creating_tables, event_store_env
from lifecycle.adapters.leadership import leadership_for
from lifecycle.adapters.mailers import MaildirMailer, SmtpMailer
from lifecycle.adapters.passwords import hash_password, verify_password
from lifecycle.adapters.personal_keys import key_store_for
from lifecycle.adapters.postal_codes import PosutoDirectory
from lifecycle.adapters.rate_limits import AttemptLimits, LoginThrottle, limits_storage
from lifecycle.adapters.timer_store import SqlTimerStore, timer_store_for
from lifecycle.application import LifecycleApplication
from lifecycle.application.access import Access
from lifecycle.application.accounts import Accounts
from lifecycle.application.bulk import BulkImports
from lifecycle.application.bulk_rows import BulkRows
from lifecycle.application.companies import Companies
from lifecycle.application.history import ContractHistory
from lifecycle.application.mail_records import MailRecords
from lifecycle.application.privacy import Privacy
from lifecycle.application.open_doors import OpenDoors
from lifecycle.application.registrations import Registrations
from lifecycle.application.shipments import ShipmentHistory
from lifecycle.application.views import fields_of
from lifecycle.checkpoints import Signer
from lifecycle.domain.notifications import NotificationSchedule
from lifecycle.feed import EventFeed, HeadWatch
from lifecycle.jobs import StalledJobSweeper
from lifecycle.mail.admin import NotificationsAdmin
from lifecycle.mail.in_process import InProcessWorker
from lifecycle.mail.rendering import MailComposer, Vendor
from lifecycle.mail.scheduler import TimerScheduler
from lifecycle.mail.sender import NotificationSender, RetryPolicy
from lifecycle.policies.mail_timers import NotificationPolicies
from lifecycle.ports import (
    BulkUploads,
    Clock,
    CredentialStore,
    Dispatcher,
    Mailer,
    PostalCodeDirectory,
    TimerStore,
)
from lifecycle.projections.engine.runner import PostgresWakeups
from lifecycle.projections.engine.views import build_view
from lifecycle.projections.read_models import STRONG, ReadModels
from lifecycle.projections.timers import TIMERS_TRACKING, TimerProjection
from lifecycle.queries.dashboards import Dashboards
from lifecycle.queries.support_desk import SupportDesk
from lifecycle.settings import Settings
from lifecycle.transparency import AuditLog
from workers.actors import declare_run_bulk_job, declare_send_notification


def build_application(
    settings: Settings,
    *,
    clock: Clock | None = None,
    postal_codes: PostalCodeDirectory | None = None,
    password_hasher: Callable[[str], str] | None = None,
    store_env: dict[str, str] | None = None,
) -> LifecycleApplication:
    """The application and the commands of each area, on the store of LIFECYCLE_DATABASE_URL
    (`store_env`: another one, e.g. the library's in-memory store for unit tests)."""
    env = event_store_env(settings) if store_env is None else store_env
    with creating_tables(env):
        application = LifecycleApplication(
            clock=clock or SystemClock(),
            postal_codes=postal_codes or PosutoDirectory(),
            terms=settings.support_terms(),
            secret_key=settings.signing_key(),
            password_hasher=password_hasher or hash_password,
            env=env,
            contract_cache_size=settings.contract_cache_size,
            job_cache_size=settings.job_cache_size,
            index_cache_size=settings.index_cache_size,
            personal_keys=lambda datastore: key_store_for(
                datastore, settings.privacy_kek() if datastore else None, cache_size=settings.personal_key_cache_size
            ),
        )
    # The commands and queries of each area, sharing the application's store.
    application.accounts = Accounts(application)
    application.shipments = ShipmentHistory(application)
    application.companies = Companies(application)
    application.registrations = Registrations(application, application.companies, application.shipments)
    application.mail_records = MailRecords(application, application.accounts, application.companies)
    application.history = ContractHistory(application, application.companies)
    application.bulk_rows = BulkRows(application, application.registrations, application.companies,
                                     application.shipments)
    return application


def build_read_models(settings: Settings, application: LifecycleApplication) -> ReadModels:
    return ReadModels(
        application,
        batch_size=settings.projection_batch_size,
        poll_interval=settings.projection_poll_seconds,
        gather_seconds=settings.projection_gather_seconds,
        wait_timeout=settings.read_wait_seconds,
        leader_timeout=settings.leader_timeout_seconds,
        max_waiters=settings.read_waiters_max,
        leadership=partial(leadership_for, getattr(application.factory, "datastore", None)),
    )


def build_audit_log(settings: Settings, application: LifecycleApplication, read_models: ReadModels) -> AuditLog:
    """The audit tree's proofs and its signed checkpoints (docs/audit.md)."""
    store = SqlCheckpointStore(application.recorder.datastore)
    with creating_tables(application.store_env):
        store.create_tables()
    return AuditLog(
        read_models.runners["audit_tree"],
        store,
        Signer(settings.audit_origin, settings.audit_key_seed()),
        application.clock,
        every_events=settings.audit_checkpoint_events,
        every_minutes=settings.audit_checkpoint_minutes,
    )


def build_feed(settings: Settings, application: LifecycleApplication,
               read_models: ReadModels | None = None) -> EventFeed:
    """The event feed, woken by the one listener of this process: the read models' (which hear
    this process's saves and, on PostgreSQL, every other's by LISTEN) when they run here;
    otherwise a LISTEN of its own (PostgreSQL) or a look at the head while someone waits."""
    recorder = application.recorder
    watch = HeadWatch(lambda: recorder.max_notification_id() or 0)
    if read_models is not None and settings.run_projections:
        read_models.log_listeners.append(watch.changed)
        # On SQLite another process (a command) may write too: the watch looks at the head as well.
        return EventFeed(application, watch, pushed=read_models.listens,
                         wait_max_seconds=settings.events_wait_max_seconds, waiters_max=settings.events_waiters_max,
                         numbers_max=settings.contract_cache_size)
    listener = None
    datastore = getattr(application.factory, "datastore", None)
    if isinstance(datastore, PostgresDatastore) and isinstance(recorder, PostgresApplicationRecorder):
        listener = PostgresWakeups(datastore, recorder.channel_name, watch.changed)
    return EventFeed(application, watch, listener, wait_max_seconds=settings.events_wait_max_seconds,
                     waiters_max=settings.events_waiters_max, numbers_max=settings.contract_cache_size)


def build_timer_store(datastore: Any) -> SqlTimerStore:
    """The timer table in the event store's database, its position in the read models' tracking."""
    return timer_store_for(datastore, build_view(datastore, TIMERS_TRACKING, ()))


def ensure_state_tables(settings: Settings, application: LifecycleApplication) -> None:
    """Every table of state beside the log (lifecycle.store_copy.STATE_TABLES), made if missing."""
    datastore = application.recorder.datastore
    with creating_tables(application.store_env):
        for store in (SqlCredentialStore(datastore), BulkUploadStore(datastore), SqlCheckpointStore(datastore)):
            store.create_tables()
        build_timer_store(datastore)


# --- access -----------------------------------------------------------------------------


def build_access(
    settings: Settings,
    application: LifecycleApplication,
    *,
    credentials: CredentialStore | None = None,
    throttle: LoginThrottle | None = None,
) -> Access:
    """API keys (events in the store) and customers' sessions (rows beside the events); with a
    throttle, logins slow down a client that keeps sending wrong passwords."""
    store = credentials or SqlCredentialStore(application.recorder.datastore)
    with creating_tables(application.store_env):
        store.create_tables()
    return Access(
        application,
        store,
        verify_password=verify_password,
        throttle=throttle,
        session_idle=timedelta(minutes=settings.session_idle_minutes),
        session_lifetime=timedelta(hours=settings.session_absolute_hours),
        touched_max=settings.credential_cache_size,
    )


def build_attempt_limits(settings: Settings, storage: Storage) -> AttemptLimits:
    return AttemptLimits(
        {
            "login": {"client": settings.login_limit_per_client},
            "password_reset": {
                "address": settings.password_reset_limit_per_address,
                "client": settings.password_reset_limit_per_client,
            },
            "sign_up": {"address": settings.sign_up_limit_per_address, "client": settings.sign_up_limit_per_client},
            "open_route": {"client": settings.open_route_limit_per_client},
        },
        storage,
        namespace=f"{settings.redis_namespace}-attempts",
    )


def build_login_throttle(settings: Settings, storage: Storage) -> LoginThrottle:
    return LoginThrottle(
        storage,
        free_per_pair=settings.login_free_failures,
        free_per_client=settings.login_free_failures_per_client,
        first_delay=settings.login_first_delay_seconds,
        max_delay=settings.login_max_delay_seconds,
        namespace=f"{settings.redis_namespace}-logins",
    )


# --- mails ----------------------------------------------------------------------------


def vendor_from(settings: Settings) -> Vendor:
    return Vendor(
        name=settings.vendor_name,
        **fields_of(settings, "mail_from", "call_center_name", "call_center_phone", "call_center_mail"),
        **fields_of(settings, "call_center_hours", "contracts_desk_name", "contracts_desk_mail"),
        service_desk_names=dict(settings.service_desk_names),
    )


def mailer_from(settings: Settings) -> Mailer:
    """SMTP when LIFECYCLE_SMTP_HOST is set; otherwise the embedded default's Maildir."""
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


@dataclass
class Notifications:
    """The mail machinery of one process.

    - LIFECYCLE_REDIS_URL set: due ids go through the Redis broker to `lifecycle worker`
      processes (which also run the scheduler); the API process only enqueues (admin routes).
    - unset (the embedded default): the API process runs the scheduler and an in-process
      worker as background services, so `lifecycle serve` alone sends the mails.
    """

    store: TimerStore
    projection: TimerProjection
    sender: NotificationSender
    scheduler: TimerScheduler
    dispatcher: Dispatcher
    admin: NotificationsAdmin
    mailer: Mailer
    privacy: Privacy  # the retention timers erase unconfirmed accounts' data with it
    broker: Broker | None = None
    in_process: InProcessWorker | None = None

    def embedded_services(self) -> list[BackgroundService]:
        """What the API process runs itself: with no broker, the worker and the scheduler."""
        if self.in_process is None:
            return []
        return [self.in_process, self.scheduler]

    def close(self) -> None:
        self.mailer.close()
        if self.broker is not None:
            self.broker.close()


def build_notifications(
    settings: Settings,
    application: LifecycleApplication,
    *,
    mailer: Mailer | None = None,
    broker: Broker | None = None,
    clock: Clock | None = None,
    timers: TimerStore | None = None,
) -> Notifications:
    clock = clock or application.clock
    wall_clock = SystemClock()  # leases and enqueue times between processes: never a test's fixed clock
    if settings.smtp_timeout_seconds * 2 >= settings.notification_claim_seconds:
        raise ValueError("LIFECYCLE_NOTIFICATION_CLAIM_SECONDS must exceed twice the SMTP timeout")
    store = timers or build_timer_store(application.recorder.datastore)
    schedule = NotificationSchedule(
        renewal=application.terms.renewal,
        service_in_business_days=settings.service_in_business_days,
        send_time=settings.mail_send_time,
        one_month_reminder=settings.renewal_reminder_one_month,
        expiry_notice=settings.expiry_notice,
        provisional_retention=timedelta(days=settings.provisional_account_retention_days),
    )
    projection = TimerProjection(application, store, NotificationPolicies(schedule))
    mailer = mailer or mailer_from(settings)
    sender = NotificationSender(
        application.accounts,
        application.companies,
        application.mail_records,
        application.terms.renewal,
        store,
        MailComposer(vendor_from(settings)),
        mailer,
        clock=clock,
        confirmation_url_base=settings.mailed_link("confirmation"),
        email_change_url_base=settings.mailed_link("email_change"),
        password_reset_url_base=settings.mailed_link("password_reset"),
        login_url=settings.mailed_link("login"),
        forgot_password_url=settings.mailed_link("forgot_password"),
        retry=RetryPolicy(
            settings.notification_max_attempts,
            settings.notification_retry_base_seconds,
            settings.notification_retry_max_seconds,
        ),
        lease_seconds=settings.notification_claim_seconds,
        wall_clock=wall_clock,
    )
    in_process: InProcessWorker | None = None
    dispatcher: Dispatcher
    if broker is None and settings.redis_url:
        broker = redis_broker(settings.redis_url, settings.redis_namespace, settings.redis_timeout_seconds)
    if broker is not None:
        dispatcher = BrokerDispatcher(broker, settings.notification_batch_size)
    else:
        in_process = dispatcher = InProcessWorker(sender.deliver_many, settings.worker_threads,
                                                  settings.notification_batch_size)
    scheduler = TimerScheduler(
        projection.catch_up,
        store,
        dispatcher.dispatch,
        clock,
        interval_seconds=settings.scheduler_interval_seconds,
        requeue_seconds=settings.notification_requeue_seconds,
        wall_clock=wall_clock,
        leadership=leadership_for(getattr(application.factory, "datastore", None), "timer-scheduler",
                                  timeout_seconds=settings.leader_timeout_seconds,
                                  turn_seconds=settings.scheduler_interval_seconds),
    )
    admin = NotificationsAdmin(store, scheduler, dispatcher.dispatch, projection.rebuild, clock)
    privacy = Privacy(application, timers=store, mailer=mailer)
    sender.erase_unconfirmed = privacy.erase_unconfirmed
    return Notifications(store, projection, sender, scheduler, dispatcher, admin, mailer, privacy, broker, in_process)


# --- bulk registration (K-1) ---------------------------------------------------------


@dataclass
class BulkWork:
    """Bulk-registration jobs in one process.

    - with a broker (LIFECYCLE_REDIS_URL): job ids go to `lifecycle worker` processes, which
      also run the sweeper that re-enqueues a dead worker's job;
    - without (the embedded default): an in-process worker thread and the sweeper run beside
      the API."""

    imports: BulkImports
    in_process: InProcessWorker | None = None
    sweeper: StalledJobSweeper | None = None

    def services(self) -> list[BackgroundService]:
        return [s for s in (self.in_process, self.sweeper) if s is not None]


def build_bulk(
    settings: Settings,
    application: LifecycleApplication,
    broker: Broker | None,
    *,
    in_process: bool = True,
    sweep: bool | None = None,
    uploads: BulkUploads | None = None,
) -> BulkWork:
    """`in_process`: with no broker, jobs run on a worker thread of this process (a command
    runs its job itself); `sweep` (default: with no broker and in process): this process runs
    the sweeper that hands a dead worker's job out again."""
    store = uploads or BulkUploadStore(application.recorder.datastore)
    with creating_tables(application.store_env):
        store.create_tables()
    imports = BulkImports(
        application,
        store,
        max_rows=settings.bulk_max_rows,
        max_bytes=settings.bulk_max_bytes,
        batch_rows=settings.bulk_batch_rows,
        sync_rows=settings.bulk_sync_rows,
        lease_seconds=settings.bulk_lease_seconds,
        queue_wait_seconds=settings.bulk_queue_wait_seconds,
    )
    work = BulkWork(imports)
    if broker is not None:
        imports.dispatch = BulkJobDispatcher(broker).dispatch
    elif in_process:
        worker = InProcessWorker(imports.run, threads=1)
        imports.dispatch = lambda job_id: worker.dispatch([job_id])
        work.in_process = worker
    if sweep if sweep is not None else broker is None and in_process:
        work.sweeper = StalledJobSweeper(imports.resume_stalled, settings.bulk_sweep_seconds)
    return work


# --- personal data (docs/privacy.md) ----------------------------------------------------


def build_privacy(read_models: ReadModels, notifications: Notifications) -> Privacy:
    """Forget and disclose: the notifications' (whose retention timers use it), told where an
    account's companies are found."""
    parties = read_models.view("parties")

    def contracts_of(account_id: UUID) -> list[UUID]:
        read_models.wait_to_read(STRONG, "parties")
        rows = parties.query("SELECT contract_id FROM {contracts} WHERE account_id = :a", {"a": str(account_id)})
        return [UUID(row["contract_id"]) for row in rows]

    notifications.privacy.contracts_of = contracts_of
    return notifications.privacy


# --- one process ----------------------------------------------------------------------


class BackgroundService(Protocol):
    """Something that runs beside the API in the embedded default (projection runners,
    the timer scheduler, the in-process mail worker): started and stopped with it."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


@dataclass
class Runtime:
    """Everything one API process runs: the application, its reads and its background services."""

    settings: Settings
    application: LifecycleApplication
    read_models: ReadModels
    support_desk: SupportDesk  # reads of the read models
    dashboards: Dashboards
    notifications: Notifications  # timers, scheduler and mail sending
    access: Access  # who is calling: API keys and customers' sessions
    attempt_limits: AttemptLimits  # per client address (and address asked about) on the open routes
    client_addresses: ClientAddresses  # the client's address behind the trusted proxies
    doors: OpenDoors  # sign-up, reset, login and any open route, with their limits, for every entry point
    bulk: BulkImports  # bulk registration from Excel sheets (K-1)
    privacy: Privacy  # forgetting and disclosing personal data (docs/privacy.md)
    audit: AuditLog  # the audit tree's proofs and signed checkpoints
    feed: EventFeed  # GET /v1/events
    services: list[BackgroundService] = field(default_factory=list)

    def start(self) -> None:
        for service in self.services:
            service.start()

    def stop(self) -> None:
        for service in reversed(self.services):
            service.stop()
        self.notifications.close()
        self.application.close()


def bootstrap(
    settings: Settings,
    *,
    clock: Clock | None = None,
    postal_codes: PostalCodeDirectory | None = None,
    mailer: Mailer | None = None,
    broker: Broker | None = None,
    password_hasher: Callable[[str], str] | None = None,
    timers: TimerStore | None = None,
    credentials: CredentialStore | None = None,
    uploads: BulkUploads | None = None,
) -> Runtime:
    """The API process: application, read models and their queries, the mail machinery, and
    the background services it runs (projection runners; with no broker, the scheduler and
    the in-process mail worker)."""
    application = build_application(settings, clock=clock, postal_codes=postal_codes, password_hasher=password_hasher)
    with creating_tables(application.store_env):
        read_models = build_read_models(settings, application)
        notifications = build_notifications(
            settings, application, mailer=mailer, broker=broker, clock=clock, timers=timers
        )
    renewal = application.terms.renewal
    bulk = build_bulk(settings, application, notifications.broker, uploads=uploads)
    counters = limits_storage(settings.redis_url)
    access = build_access(settings, application, credentials=credentials,
                          throttle=build_login_throttle(settings, counters))
    limits = build_attempt_limits(settings, counters)
    runtime = Runtime(
        settings,
        application,
        read_models,
        SupportDesk(read_models, application.clock, renewal, settings.ending_soon_days),
        Dashboards(read_models, application.clock, renewal),
        notifications,
        access,
        limits,
        ClientAddresses(settings.trusted_proxies),
        OpenDoors(application.accounts, access, limits),
        bulk.imports,
        build_privacy(read_models, notifications),
        build_audit_log(settings, application, read_models),
        build_feed(settings, application, read_models),
    )
    runtime.services.append(runtime.feed)
    if settings.run_projections:
        runtime.services.append(read_models)
        runtime.services.append(runtime.audit)
    runtime.services += notifications.embedded_services()
    runtime.services += bulk.services()
    return runtime


# --- a worker process ---------------------------------------------------------------------


@dataclass
class WorkerRuntime:
    """Everything one `lifecycle worker` process runs: dramatiq worker threads taking
    notification ids and bulk jobs from the broker, the sweeper that hands a dead worker's
    job out again and, unless told not to, the timer scheduler."""

    settings: Settings
    application: LifecycleApplication
    notifications: Notifications
    worker: dramatiq.Worker
    services: list[BackgroundService] = field(default_factory=list)

    def start(self) -> None:
        self.worker.start()
        for service in self.services:
            service.start()

    def stop(self) -> None:
        for service in reversed(self.services):
            service.stop()
        self.worker.stop(timeout=int(self.settings.notification_claim_seconds * 1000))
        self.notifications.close()
        self.application.close()


def bootstrap_worker(
    settings: Settings,
    *,
    threads: int | None = None,
    scheduler: bool = True,
    clock: Clock | None = None,
    mailer: Mailer | None = None,
    broker: Broker | None = None,
) -> WorkerRuntime:
    """A worker process on the broker of LIFECYCLE_REDIS_URL (or `broker`)."""
    application = build_application(settings, clock=clock)
    notifications = build_notifications(settings, application, mailer=mailer, broker=broker, clock=clock)
    assert notifications.broker is not None, "a worker needs a broker"
    declare_send_notification(notifications.broker, notifications.sender.deliver_many,
                              settings.notification_claim_seconds)
    # K-1: bulk jobs; a job whose worker died is found by its lease and enqueued again.
    bulk = build_bulk(settings, application, notifications.broker, in_process=False, sweep=True)
    declare_run_bulk_job(notifications.broker, bulk.imports.run, time_limit_seconds=24 * 3600)
    worker = dramatiq.Worker(notifications.broker, worker_threads=threads or settings.worker_threads, worker_timeout=1000)
    # dramatiq's default prefetch (2 per thread) starves the threads between Redis round trips.
    worker.queue_prefetch = settings.worker_prefetch
    runtime = WorkerRuntime(settings, application, notifications, worker, bulk.services())
    if scheduler:
        runtime.services.append(notifications.scheduler)
    return runtime


# --- a command ----------------------------------------------------------------------------


class CommandRuntime:
    """What one `lifecycle` command uses, each part built the first time the command asks
    for it (a command that lists keys opens no mailer), and all closed at its end."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def application(self) -> LifecycleApplication:
        return build_application(self.settings)

    @cached_property
    def access(self) -> Access:
        return build_access(self.settings, self.application)

    @cached_property
    def notifications(self) -> Notifications:
        return build_notifications(self.settings, self.application)

    @cached_property
    def read_models(self) -> ReadModels:
        return build_read_models(self.settings, self.application)

    @cached_property
    def bulk(self) -> BulkImports:
        """Jobs run by the command itself (`run_here`), not handed to a worker."""
        return build_bulk(self.settings, self.application, None, in_process=False).imports

    def close(self) -> None:
        built = self.__dict__
        if "notifications" in built:
            self.notifications.close()
        if "application" in built:
            self.application.close()


@contextmanager
def command_runtime(settings: Settings | None = None) -> Iterator[CommandRuntime]:
    runtime = CommandRuntime(settings or Settings())
    try:
        yield runtime
    finally:
        runtime.close()
