"""The service's dependencies as configured (the event store, the broker, the mail transport):
what each is, in words safe for logs (never a password), and a live check of each on a
connection of its own, for `lifecycle check` and the start-up of `serve` and `worker`."""

from __future__ import annotations

import smtplib
import sqlite3
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from lifecycle.settings import Settings


class BadSetting(ValueError):
    """A setting that cannot work, named by its environment variable."""


class Unreachable(Exception):
    """A configured dependency does not answer."""


@dataclass(frozen=True)
class StoreTarget:
    kind: str  # "sqlite" or "postgresql"
    path: str = ""
    host: str = ""
    port: int = 0
    user: str = ""
    password: str = ""
    database: str = ""
    schema: str = ""

    def __str__(self) -> str:
        if self.kind == "sqlite":
            return f"sqlite {self.path}"
        schema = f" (schema {self.schema})" if self.schema else ""
        return f"postgresql {self.user}@{self.host}:{self.port}/{self.database}{schema}"


def store_target(settings: Settings) -> StoreTarget:
    """LIFECYCLE_DATABASE_URL read as lifecycle.adapters.database.event_store_env reads it; BadSetting when it cannot be."""
    url = settings.database_url
    if url.startswith("sqlite:///"):
        return StoreTarget("sqlite", path=url.removeprefix("sqlite:///"))
    if url.startswith(("postgresql://", "postgres://")):
        parts = urlsplit(url)
        try:
            port = parts.port or 5432
        except ValueError:
            raise BadSetting(f"LIFECYCLE_DATABASE_URL: the port is not a number in {mask_url(url)!r}") from None
        database = parts.path.lstrip("/")
        if not database or "/" in database:
            raise BadSetting(f"LIFECYCLE_DATABASE_URL names no database: {mask_url(url)!r} "
                             "(postgresql://USER@HOST:PORT/DB)")
        return StoreTarget(
            "postgresql",
            host=parts.hostname or "127.0.0.1",
            port=port,
            user=unquote(parts.username or "postgres"),
            password=unquote(parts.password or ""),
            database=database,
            schema=settings.database_schema,
        )
    raise BadSetting(
        f"LIFECYCLE_DATABASE_URL must be sqlite:///PATH or postgresql://USER@HOST:PORT/DB, not {mask_url(url)!r}"
    )


def mask_url(url: str) -> str:
    """The URL with its password replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def describe_broker(settings: Settings) -> str:
    if not settings.redis_url:
        return "none (embedded default: the API process sends the mails)"
    parts = urlsplit(settings.redis_url)
    return f"redis {parts.hostname}:{parts.port or 6379}{parts.path or '/0'}, namespace {settings.redis_namespace}"


def describe_mail(settings: Settings) -> str:
    if not settings.smtp_host:
        return f"maildir {settings.mail_directory()}"
    auth = f", as {settings.smtp_username}" if settings.smtp_username else ""
    return f"smtp {settings.smtp_host}:{settings.smtp_port} ({settings.smtp_security}{auth})"


# --- live checks: each answers a short description of what answered, or raises ------------


def check_store(settings: Settings) -> str:
    target = store_target(settings)
    started = time.monotonic()
    if target.kind == "sqlite":
        if target.path != ":memory:":
            Path(target.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            with sqlite3.connect(target.path, timeout=settings.database_connect_timeout_seconds) as conn:
                conn.execute("SELECT 1")
        except sqlite3.Error as error:
            raise Unreachable(f"event store {target} cannot be opened: {error}") from error
    else:
        import psycopg

        try:
            with psycopg.connect(
                dbname=target.database, host=target.host, port=target.port, user=target.user,
                password=target.password or None, connect_timeout=settings.database_connect_timeout_seconds,
                autocommit=True,
            ) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as error:
            raise Unreachable(f"event store {target} {refuses_or_silent(error)}: {postgres_reason(error, target)}") from error
    return f"{target}, {1000 * (time.monotonic() - started):.0f} ms"


def refuses_or_silent(error: BaseException) -> str:
    """The server answered but refused (no such database or role, a bad password), or did not answer."""
    text = str(error)
    answered = ("does not exist" in text or "authentication failed" in text or "no pg_hba.conf entry" in text)
    return "refuses the connection" if answered else "does not answer"


def postgres_reason(error: BaseException, target: StoreTarget | None = None) -> str:
    """psycopg's several-line connection error as one line, with what to do when it is known."""
    text = str(error)
    if "failed: " in text:
        text = text.rsplit("failed: ", 1)[1]
    text = "; ".join(" ".join(line.replace("FATAL:", "").split()) for line in text.splitlines() if line.strip())
    if target is not None:
        if f'database "{target.database}" does not exist' in text:
            text += f" (create it first: createdb -h {target.host} -p {target.port} -U {target.user} {target.database})"
        elif f'role "{target.user}" does not exist' in text:
            text += " (create the role, or name another user in LIFECYCLE_DATABASE_URL)"
    return text or type(error).__name__


def check_broker(settings: Settings) -> str:
    if not settings.redis_url:
        return "not configured"
    import redis

    started = time.monotonic()
    try:
        client = redis.Redis.from_url(
            settings.redis_url,
            socket_connect_timeout=settings.redis_timeout_seconds,
            socket_timeout=settings.redis_timeout_seconds,
        )
        try:
            client.ping()
        finally:
            client.close()
    except (redis.RedisError, ValueError) as error:
        raise Unreachable(f"broker {describe_broker(settings)} does not answer: {' '.join(str(error).split())}") from error
    return f"{describe_broker(settings)}, {1000 * (time.monotonic() - started):.0f} ms"


def check_smtp(settings: Settings) -> str:
    """Connects, greets, STARTTLS/TLS and logs in as the mailer would; sends nothing."""
    if not settings.smtp_host:
        return "not configured"
    started = time.monotonic()
    timeout = min(settings.smtp_timeout_seconds, 5.0)
    try:
        context = ssl.create_default_context(cafile=str(settings.smtp_ca_file) if settings.smtp_ca_file else None)
        connection: smtplib.SMTP
        if settings.smtp_security == "ssl":
            connection = smtplib.SMTP_SSL(settings.smtp_host, settings.smtp_port, timeout=timeout, context=context)
        else:
            connection = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout)
        try:
            if settings.smtp_security == "starttls":
                connection.starttls(context=context)
            connection.ehlo_or_helo_if_needed()
            if settings.smtp_username:
                connection.login(settings.smtp_username, settings.smtp_password)
        finally:
            try:
                connection.quit()
            except (smtplib.SMTPException, OSError):
                connection.close()
    except (smtplib.SMTPException, OSError) as error:
        raise Unreachable(f"mail {describe_mail(settings)} does not answer: {' '.join(str(error).split()) or type(error).__name__}") from error
    return f"{describe_mail(settings)}, {1000 * (time.monotonic() - started):.0f} ms"
