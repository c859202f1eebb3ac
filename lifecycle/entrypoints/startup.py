"""Starting the `lifecycle` commands: settings read with one clear line per bad one, the
dependencies a command needs tried before it starts (exit status 2 and one line each, no
traceback), and `lifecycle check` (issue 11, deliverable 6); the log lines are lifecycle/logs.py."""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import typer
from pydantic import ValidationError

from lifecycle.adapters.dependencies import (
    BadSetting,
    Unreachable,
    check_broker,
    check_smtp,
    check_store,
    describe_mail,
    postgres_reason,
    refuses_or_silent,
    store_target,
)
from lifecycle.settings import Settings

STARTUP_FAILED = 2  # the exit status for a bad setting or a dependency that does not answer

# Settings whose values are never echoed back (URLs may carry passwords).
SECRET_SETTINGS = {"secret_key", "privacy_key", "smtp_password", "database_url", "redis_url"}


class StartupError(Exception):
    """What keeps a command from starting: one line per problem."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("; ".join(lines))
        self.lines = lines


def command_runtime(settings: Settings | None = None):  # noqa: ANN201 - a context manager of CommandRuntime
    """What a command uses, from the one assembly place (lifecycle.bootstrap), imported only
    when a command runs: `--help` stays quick."""
    from lifecycle.bootstrap import command_runtime as assemble

    return assemble(settings)


# --- settings --------------------------------------------------------------------------


def load_settings() -> Settings:
    try:
        return Settings()
    except (ValidationError, ValueError) as error:
        lines = settings_error_lines(error)
        if lines is None:
            raise
        raise StartupError(lines) from None


def settings_error_lines(error: BaseException) -> list[str] | None:
    """Pydantic's many-line report as one line per setting, named by its variable."""
    if isinstance(error, ValidationError) and error.title == "Settings":
        return [_validation_line(e) for e in error.errors()]
    from pydantic_settings import SettingsError

    if isinstance(error, SettingsError):
        found = re.search(r'field "([^"]+)"', str(error))
        variable = f"LIFECYCLE_{found.group(1).upper()}" if found else "a setting"
        cause = error.__cause__
        reason = f"not valid JSON ({cause})" if isinstance(cause, json.JSONDecodeError) else str(cause or error)
        return [f"{variable}: {reason}"]
    return None


def _validation_line(error: Any) -> str:
    field, *inner = [str(part) for part in error.get("loc", ())] or ["?"]
    where = f" (at {'.'.join(inner)})" if inner else ""
    got = "" if field in SECRET_SETTINGS or "input" not in error else f", not {error['input']!r}"
    return f"LIFECYCLE_{field.upper()}{where}: {error.get('msg', 'invalid')}{got}"


# --- dependencies ----------------------------------------------------------------------


def preflight(settings: Settings, *, store: bool = True, broker: bool = True) -> None:
    """Raises StartupError unless every dependency the command needs answers: the event
    store, and Redis when LIFECYCLE_REDIS_URL is set. SMTP is not needed to start: mails
    wait in their timers until it answers (`lifecycle check` tries it)."""
    lines = []
    for needed, check in ((store, check_store), (broker and bool(settings.redis_url), check_broker)):
        if not needed:
            continue
        try:
            check(settings)
        except (BadSetting, Unreachable) as error:
            lines.append(str(error))
    if lines:
        raise StartupError(lines)
    if store:
        check_privacy_key(settings)


def check_privacy_key(settings: Settings) -> None:
    """A LIFECYCLE_PRIVACY_KEY that is not the one the store's personal-data keys were wrapped
    with: one line and exit 2 before anything is served (docs/privacy.md)."""
    from eventsourcing.persistence import InfrastructureFactory
    from eventsourcing.utils import Environment

    from lifecycle.adapters.database import creating_tables, event_store_env
    from lifecycle.adapters.personal_keys import WrongKeyEncryptionKey, key_store_for

    env = event_store_env(settings)
    try:
        kek = settings.privacy_kek()
        with creating_tables(env):
            factory = InfrastructureFactory.construct(env=Environment("Lifecycle", env))
            try:
                key_store_for(factory.datastore, kek)  # type: ignore[attr-defined]
            finally:
                factory.close()
    except WrongKeyEncryptionKey as error:
        raise StartupError([str(error)]) from None


def error_lines(error: BaseException) -> list[str] | None:
    """One line for each problem of a failure that is a bad setting or a dependency that
    does not answer; None for anything else (a bug: its traceback is wanted)."""
    if isinstance(error, StartupError):
        return error.lines
    lines = settings_error_lines(error)
    if lines is not None:
        return lines
    if isinstance(error, (BadSetting, Unreachable)) or type(error).__name__ in (
        "UnsupportedDatabaseUrl", "WrongKeyEncryptionKey"
    ):
        return [str(error)]
    import psycopg
    import redis.exceptions
    from eventsourcing.persistence import InterfaceError, OperationalError

    from lifecycle.availability import BrokerDown, EventStoreDown

    if isinstance(error, EventStoreDown):  # says what the store's probe found
        return [str(error)]
    if isinstance(error, (psycopg.OperationalError, psycopg.InterfaceError, OperationalError, InterfaceError)):
        cause = error if isinstance(error, psycopg.Error) else (error.__cause__ or error)
        try:
            target: Any = store_target(Settings())
        except Exception:  # noqa: BLE001 - only for the wording
            target = None
        return [f"event store {target or ''} {refuses_or_silent(cause)}: {postgres_reason(cause, target)}"
                .replace("  ", " ")]
    if isinstance(error, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, BrokerDown)):
        return [f"broker does not answer: {' '.join(str(error).split())}"]
    return None


def run_reporting_startup_errors(command: Any) -> None:
    """Runs the CLI; a bad setting or an unreachable dependency ends it with one line each
    on stderr and exit status 2 instead of a traceback."""
    try:
        command()
    except Exception as error:
        lines = error_lines(error)
        if lines is None:
            raise
        for line in lines:
            print(f"error: {line}", file=sys.stderr)
        sys.exit(STARTUP_FAILED)


def check_command() -> None:
    """Try every configured dependency (event store, Redis, SMTP) and say which answer:
    exit 0 when all do, 2 otherwise."""
    try:
        settings = load_settings()
    except StartupError as error:
        for line in error.lines:
            typer.echo(f"settings: {line}")
        raise typer.Exit(STARTUP_FAILED) from None
    typer.echo("settings: ok")
    failed = False
    for name, check in (("store", check_store), ("broker", check_broker), ("smtp", check_smtp)):
        try:
            typer.echo(f"{name}: ok ({check(settings)})" if name == "store" or _configured(settings, name)
                       else f"{name}: not configured ({_unconfigured(settings, name)})")
        except (BadSetting, Unreachable) as error:
            failed = True
            typer.echo(f"{name}: FAILED: {error}")
    if failed:
        raise typer.Exit(STARTUP_FAILED)


def _configured(settings: Settings, name: str) -> bool:
    return bool(settings.redis_url if name == "broker" else settings.smtp_host)


def _unconfigured(settings: Settings, name: str) -> str:
    return "embedded default: the API process sends the mails" if name == "broker" else (
        f"mails go to {describe_mail(settings)}")
