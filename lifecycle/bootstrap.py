"""The one place where the application is assembled from Settings."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from lifecycle.adapters.passwords import hash_password
from lifecycle.adapters.postal_codes import PosutoDirectory
from lifecycle.application import LifecycleApplication
from lifecycle.clock import Clock, SystemClock
from lifecycle.projections.dashboards import Dashboards
from lifecycle.projections.lookups import SupportDesk
from lifecycle.projections.system import ReadModels
from lifecycle.settings import Settings
from workers.notifications import Notifications, build_notifications


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
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": parts.path.lstrip("/"),
            "POSTGRES_HOST": parts.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(parts.port or 5432),
            "POSTGRES_USER": unquote(parts.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(parts.password or ""),
            "POSTGRES_POOL_SIZE": str(settings.database_pool_size),
            "POSTGRES_MAX_OVERFLOW": str(settings.database_pool_size),
            "POSTGRES_CONN_MAX_AGE": "600",
            "POSTGRES_PRE_PING": "y",
            "POSTGRES_LOCK_TIMEOUT": "5",
        }
        if settings.database_schema:
            ensure_postgres_schema(env, settings.database_schema)
            env["POSTGRES_SCHEMA"] = settings.database_schema
        return env
    raise UnsupportedDatabaseUrl(f"LIFECYCLE_DATABASE_URL must be sqlite:///PATH or postgresql://..., not {url!r}")


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
    if env["PERSISTENCE_MODULE"] != "eventsourcing.postgres":
        yield
        return
    with _admin_connection(env) as conn:
        conn.execute(DDL_LOCK.format(""))
        try:
            yield
        finally:
            conn.execute(DDL_LOCK.format("un"))


def build_application(settings: Settings, clock: Clock | None = None) -> LifecycleApplication:
    env = event_store_env(settings)
    with creating_tables(env):
        return LifecycleApplication(
            clock=clock or SystemClock(),
            postal_codes=PosutoDirectory(),
            terms=settings.support_terms(),
            secret_key=settings.signing_key(),
            password_hasher=hash_password,
            env=env,
            contract_cache_size=settings.contract_cache_size,
        )


class BackgroundService(Protocol):
    """Something that runs beside the API in the embedded default (projection runners,
    the timer scheduler, the in-process mail worker): started and stopped with it."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


@dataclass
class Runtime:
    """Everything one process runs: the application and its background services."""

    settings: Settings
    application: LifecycleApplication
    services: list[BackgroundService] = field(default_factory=list)
    read_models: ReadModels | None = None
    support_desk: SupportDesk | None = None  # reads of the read models
    dashboards: Dashboards | None = None
    notifications: Notifications | None = None  # timers, scheduler and mail sending

    def start(self) -> None:
        for service in self.services:
            service.start()

    def stop(self) -> None:
        for service in reversed(self.services):
            service.stop()
        if self.notifications is not None:
            self.notifications.close()
        self.application.close()


def build_read_models(settings: Settings, application: LifecycleApplication) -> ReadModels:
    return ReadModels(
        application,
        batch_size=settings.projection_batch_size,
        poll_interval=settings.projection_poll_seconds,
        gather_seconds=settings.projection_gather_seconds,
        wait_timeout=settings.read_wait_seconds,
    )


def build_runtime(settings: Settings, clock: Clock | None = None) -> Runtime:
    application = build_application(settings, clock)
    with creating_tables(event_store_env(settings)):
        return _assemble_runtime(settings, application, clock)


def _assemble_runtime(settings: Settings, application: LifecycleApplication, clock: Clock | None) -> Runtime:
    read_models = build_read_models(settings, application)
    runtime = Runtime(settings, application, read_models=read_models)
    runtime.support_desk = SupportDesk(read_models, application.clock, application.terms.renewal, settings.ending_soon_days)
    runtime.dashboards = Dashboards(read_models, application.clock, application.terms.renewal)
    if settings.run_projections:
        runtime.services.append(read_models)
    runtime.notifications = build_notifications(settings, application, clock)
    runtime.services += runtime.notifications.embedded_services()
    return runtime
