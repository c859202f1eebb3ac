"""The one place where the service is assembled from Settings: the application, the read
models and their queries, the mail machinery (policies, timer table, renderer, sender,
scheduler), the broker and the background services. Adapters (clock, postal directory,
mailer, broker) come in as parameters with the real ones as defaults, so a test can pass
a fake (cosmicpython's `bootstrap()`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit
from uuid import UUID

from dramatiq.broker import Broker

from lifecycle.adapters.broker import BrokerDispatcher, BulkJobDispatcher, redis_broker
from lifecycle.adapters.bulk_uploads import BulkUploadStore
from lifecycle.adapters.credentials import CredentialStore
from lifecycle.adapters.mailers import MaildirMailer, SmtpMailer
from lifecycle.adapters.passwords import hash_password, verify_password
from lifecycle.adapters.postal_codes import PosutoDirectory
from lifecycle.adapters.rate_limits import AttemptLimits, limits_storage
from lifecycle.application import LifecycleApplication
from lifecycle.application.access import Access
from lifecycle.application.bulk import BulkImports
from lifecycle.clock import Clock, SystemClock
from lifecycle.domain.addresses import PostalCodeDirectory
from lifecycle.domain.notifications import NotificationSchedule
from lifecycle.jobs import StalledJobSweeper
from lifecycle.leadership import leadership_for
from lifecycle.mail.admin import NotificationsAdmin
from lifecycle.mail.in_process import InProcessWorker
from lifecycle.mail.ports import Mailer, TimerStore
from lifecycle.mail.rendering import MailComposer, Vendor
from lifecycle.mail.scheduler import TimerScheduler
from lifecycle.mail.sender import NotificationSender, RetryPolicy
from lifecycle.policies.mail_timers import NotificationPolicies
from lifecycle.projections.read_models import ReadModels
from lifecycle.projections.timers import TimerProjection, timer_store_for
from lifecycle.queries.dashboards import Dashboards
from lifecycle.queries.support_desk import SupportDesk
from lifecycle.settings import Settings


class UnsupportedDatabaseUrl(ValueError):
    pass


def event_store_env(settings: Settings) -> dict[str, str]:
    """The eventsourcing library's environment for LIFECYCLE_DATABASE_URL."""
    url = settings.database_url
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": path,
            "SQLITE_LOCK_TIMEOUT": "10",
        }
    if url.startswith(("postgresql://", "postgres://")):
        parts = urlsplit(url)
        env = {
            "PERSISTENCE_MODULE": "lifecycle.adapters.event_store:LifecyclePostgresFactory",
            "POSTGRES_DBNAME": parts.path.lstrip("/"),
            "POSTGRES_HOST": parts.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(parts.port or 5432),
            "POSTGRES_USER": unquote(parts.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(parts.password or ""),
            "POSTGRES_POOL_SIZE": str(settings.database_pool_size),
            "POSTGRES_MAX_OVERFLOW": str(settings.database_pool_size),
            "POSTGRES_CONN_MAX_AGE": "600",
            "POSTGRES_PRE_PING": "y",
            "POSTGRES_LOCK_TIMEOUT": str(settings.database_lock_timeout_seconds),
            **outage_timeouts_env(settings),
        }
        if settings.database_schema:
            ensure_postgres_schema(env, settings.database_schema)
            env["POSTGRES_SCHEMA"] = settings.database_schema
        return env
    raise UnsupportedDatabaseUrl(f"LIFECYCLE_DATABASE_URL must be sqlite:///PATH or postgresql://..., not {url!r}")


def outage_timeouts_env(settings: Settings) -> dict[str, str]:
    """The store's timeouts, read by lifecycle.adapters.event_store (issue 11's outages)."""
    return {
        "POSTGRES_POOL_TIMEOUT": str(settings.database_pool_timeout_seconds),
        "POSTGRES_LIBPQ_CONNECT_TIMEOUT": str(settings.database_connect_timeout_seconds),
        "POSTGRES_STATEMENT_TIMEOUT": str(settings.database_statement_timeout_seconds),
    }


DDL_LOCK = "SELECT pg_advisory_{}lock(hashtext('lifecycle: creating tables'))"


def _admin_connection(env: dict[str, str]):  # noqa: ANN202 - a psycopg connection, autocommit
    import psycopg

    return psycopg.connect(
        dbname=env["POSTGRES_DBNAME"],
        host=env["POSTGRES_HOST"],
        port=env["POSTGRES_PORT"],
        user=env["POSTGRES_USER"],
        password=env["POSTGRES_PASSWORD"] or None,
        autocommit=True,
        connect_timeout=int(env.get("POSTGRES_LIBPQ_CONNECT_TIMEOUT", "5")),
    )


def ensure_postgres_schema(env: dict[str, str], schema: str) -> None:
    """Concurrent CREATE SCHEMA IF NOT EXISTS can still fail on pg_namespace's unique index
    when processes start together: like tables, schemas are created one at a time."""
    from psycopg import sql

    with _admin_connection(env) as conn, conn.transaction():
        conn.execute(DDL_LOCK.format("xact_"))
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))


@contextmanager
def creating_tables(env: dict[str, str]) -> Iterator[None]:
    """Server processes starting together on one PostgreSQL database would race on
    CREATE ... IF NOT EXISTS (a duplicate pg_type row): they create tables one at a time."""
    if "POSTGRES_DBNAME" not in env:
        yield
        return
    with _admin_connection(env) as conn:
        conn.execute(DDL_LOCK.format(""))
        try:
            yield
        finally:
            conn.execute(DDL_LOCK.format("un"))


def build_application(
    settings: Settings, *, clock: Clock | None = None, postal_codes: PostalCodeDirectory | None = None
) -> LifecycleApplication:
    env = event_store_env(settings)
    with creating_tables(env):
        return LifecycleApplication(
            clock=clock or SystemClock(),
            postal_codes=postal_codes or PosutoDirectory(),
            terms=settings.support_terms(),
            secret_key=settings.signing_key(),
            password_hasher=hash_password,
            env=env,
            contract_cache_size=settings.contract_cache_size,
        )


def build_read_models(settings: Settings, application: LifecycleApplication) -> ReadModels:
    return ReadModels(
        application,
        batch_size=settings.projection_batch_size,
        poll_interval=settings.projection_poll_seconds,
        gather_seconds=settings.projection_gather_seconds,
        wait_timeout=settings.read_wait_seconds,
        leader_timeout=settings.leader_timeout_seconds,
        max_waiters=settings.read_waiters_max,
    )


# --- access -----------------------------------------------------------------------------


def build_access(settings: Settings, application: LifecycleApplication) -> Access:
    """API keys (events in the store) and customers' sessions (rows beside the events)."""
    store = CredentialStore(application.recorder.datastore)
    with creating_tables(event_store_env(settings)):
        store.create_tables()
    return Access(
        application,
        store,
        verify_password=verify_password,
        session_idle=timedelta(minutes=settings.session_idle_minutes),
        session_lifetime=timedelta(hours=settings.session_absolute_hours),
    )


def build_attempt_limits(settings: Settings) -> AttemptLimits:
    return AttemptLimits(
        {
            "login": {"address": settings.login_limit_per_address, "client": settings.login_limit_per_client},
            "password_reset": {
                "address": settings.password_reset_limit_per_address,
                "client": settings.password_reset_limit_per_client,
            },
        },
        limits_storage(settings.redis_url),
        namespace=f"{settings.redis_namespace}-attempts",
    )


# --- mails ----------------------------------------------------------------------------


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


class Dispatcher(Protocol):
    def dispatch(self, notification_ids: Sequence[UUID]) -> None: ...


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
) -> Notifications:
    clock = clock or application.clock
    if settings.smtp_timeout_seconds * 2 >= settings.notification_claim_seconds:
        raise ValueError("LIFECYCLE_NOTIFICATION_CLAIM_SECONDS must exceed twice the SMTP timeout")
    store = timer_store_for(application.recorder.datastore)
    schedule = NotificationSchedule(
        renewal=application.terms.renewal,
        service_in_business_days=settings.service_in_business_days,
        send_time=settings.mail_send_time,
        one_month_reminder=settings.renewal_reminder_one_month,
        expiry_notice=settings.expiry_notice,
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
        retry=RetryPolicy(
            settings.notification_max_attempts,
            settings.notification_retry_base_seconds,
            settings.notification_retry_max_seconds,
        ),
        lease_seconds=settings.notification_claim_seconds,
    )
    in_process: InProcessWorker | None = None
    dispatcher: Dispatcher
    if broker is None and settings.redis_url:
        broker = redis_broker(settings.redis_url, settings.redis_namespace, settings.redis_timeout_seconds)
    if broker is not None:
        dispatcher = BrokerDispatcher(broker)
    else:
        in_process = dispatcher = InProcessWorker(sender.deliver, settings.worker_threads)
    scheduler = TimerScheduler(
        projection.catch_up,
        store,
        dispatcher.dispatch,
        clock,
        interval_seconds=settings.scheduler_interval_seconds,
        requeue_seconds=settings.notification_requeue_seconds,
        leadership=leadership_for(getattr(application.factory, "datastore", None), "timer-scheduler",
                                  timeout_seconds=settings.leader_timeout_seconds,
                                  turn_seconds=settings.scheduler_interval_seconds),
    )
    admin = NotificationsAdmin(store, scheduler, dispatcher.dispatch, projection.rebuild, clock)
    return Notifications(store, projection, sender, scheduler, dispatcher, admin, mailer, broker, in_process)


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
    settings: Settings, application: LifecycleApplication, broker: Broker | None, *, in_process: bool = True
) -> BulkWork:
    store = BulkUploadStore(application.recorder.datastore)
    with creating_tables(event_store_env(settings)):
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
    if broker is None and in_process:
        work.sweeper = StalledJobSweeper(imports.resume_stalled, settings.bulk_sweep_seconds)
    return work


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
    attempt_limits: AttemptLimits  # logins and password-reset requests
    bulk: BulkImports  # bulk registration from Excel sheets (K-1)
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
) -> Runtime:
    """The API process: application, read models and their queries, the mail machinery, and
    the background services it runs (projection runners; with no broker, the scheduler and
    the in-process mail worker)."""
    application = build_application(settings, clock=clock, postal_codes=postal_codes)
    with creating_tables(event_store_env(settings)):
        read_models = build_read_models(settings, application)
        notifications = build_notifications(settings, application, mailer=mailer, broker=broker, clock=clock)
    renewal = application.terms.renewal
    bulk = build_bulk(settings, application, notifications.broker)
    runtime = Runtime(
        settings,
        application,
        read_models,
        SupportDesk(read_models, application.clock, renewal, settings.ending_soon_days),
        Dashboards(read_models, application.clock, renewal),
        notifications,
        build_access(settings, application),
        build_attempt_limits(settings),
        bulk.imports,
    )
    if settings.run_projections:
        runtime.services.append(read_models)
    runtime.services += notifications.embedded_services()
    runtime.services += bulk.services()
    return runtime
