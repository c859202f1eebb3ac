"""Where the event store lives: the eventsourcing library's environment for
LIFECYCLE_DATABASE_URL (SQLite file or PostgreSQL), and creating schemas and tables one
process at a time when several start together on one PostgreSQL database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlsplit

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
