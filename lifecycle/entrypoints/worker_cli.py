"""`lifecycle worker`, `lifecycle notifications ...` and `lifecycle timers ...`."""

from __future__ import annotations

import json
from datetime import datetime
from uuid import UUID

import typer

from lifecycle.entrypoints.cli_help import Typer
from lifecycle.entrypoints.startup import command_runtime
from lifecycle.settings import Settings

notifications_cli = Typer(help="Mails: the failed ones, sending them again.", no_args_is_help=True)
timers_cli = Typer(help="The timers of the mails.", no_args_is_help=True)


def worker(
    threads: int = typer.Option(0, help="Worker threads (default LIFECYCLE_WORKER_THREADS)."),
    scheduler: bool = typer.Option(True, help="Also run the scheduler that enqueues due timers."),
) -> None:
    """Send mails: take notification ids from Redis (LIFECYCLE_REDIS_URL) and send them over
    SMTP (LIFECYCLE_SMTP_HOST; unset: the Maildir)."""
    from lifecycle.entrypoints.startup import load_settings, preflight
    from lifecycle.entrypoints.worker import run_worker
    from lifecycle.logs import configure_logging

    settings = load_settings()
    preflight(settings)  # a bad setting or a dependency away: one line and exit 2, not a traceback
    configure_logging(settings.log_format)  # dramatiq's loggers propagate to it
    run_worker(settings, threads=threads or None, scheduler=scheduler)


def _print(value: object) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, indent=2))


@notifications_cli.command("failed")
def failed() -> None:
    """List the mails whose sends failed after the last retry."""
    with command_runtime() as runtime:
        _print(runtime.notifications.admin.failed())


def _one_notification(notification_id: str, what: str) -> None:
    """`admin.<what>(id)` printed; an unknown or malformed id: one line and exit 1."""
    from lifecycle.domain.errors import DomainError

    with command_runtime() as runtime:
        try:
            _print(getattr(runtime.notifications.admin, what)(UUID(notification_id)))
        except (DomainError, ValueError) as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(1) from None


@notifications_cli.command("resend")
def resend(notification_id: str) -> None:
    """Make a failed mail due again and hand it to the workers."""
    _one_notification(notification_id, "resend")


@notifications_cli.command("show")
def show(notification_id: str) -> None:
    """One notification's timer and state."""
    _one_notification(notification_id, "notification")


@timers_cli.command("rebuild")
def rebuild() -> None:
    """Drop the timer table and derive it again from the event log (sent mails stay sent)."""
    from lifecycle.progress import progress_bar

    with command_runtime() as runtime:
        with progress_bar("timers rebuild") as progress:
            applied = runtime.notifications.admin.rebuild(progress)
        typer.echo(f"applied {applied} events")
        failed = runtime.notifications.projection.failed_event
        if failed is not None:  # the log line said so too; a script sees it in the status
            typer.echo(f"error: stopped at log position {failed.position} ({failed.topic}, {failed.error_type}): "
                       "an event the mail rules cannot handle; timers after it are missing", err=True)
            raise typer.Exit(1)


@timers_cli.command("run")
def run(as_of: datetime = typer.Option(None, help="Fire timers due by this instant (default: now).")) -> None:
    """Fire every due timer once: enqueue them for the workers (needs LIFECYCLE_REDIS_URL)."""
    settings = Settings()
    if not settings.redis_url:
        typer.echo("error: LIFECYCLE_REDIS_URL is not set; with the embedded default `lifecycle serve` fires timers",
                   err=True)
        raise typer.Exit(1)
    if as_of is not None and not settings.allow_clock_override:
        typer.echo("error: --as-of is a test aid: it needs LIFECYCLE_ALLOW_CLOCK_OVERRIDE=true", err=True)
        raise typer.Exit(1)
    if as_of is not None and as_of.tzinfo is None:
        typer.echo("error: --as-of needs an offset, e.g. 2027-01-06T10:00:00+09:00", err=True)
        raise typer.Exit(1)
    with command_runtime(settings) as runtime:
        _print(runtime.notifications.admin.run_timers(as_of))
