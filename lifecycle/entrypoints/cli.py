"""The `lifecycle` command."""

from __future__ import annotations

import logging
import os

import typer

from lifecycle.entrypoints.cli_help import Typer

cli = Typer(help="Support contract lifecycle service.", no_args_is_help=True)


@cli.callback()
def _commands() -> None:
    """Support contract lifecycle service."""
    from lifecycle.logs import configure_logging

    configure_logging()  # every command's log lines as LIFECYCLE_LOG_FORMAT says


@cli.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
    workers: int = typer.Option(1, help="Server processes (PostgreSQL only: SQLite is one process)."),
) -> None:
    """Run the HTTP API on the event store of LIFECYCLE_DATABASE_URL."""
    from lifecycle.entrypoints.server import claim_port
    from lifecycle.entrypoints.server import serve as run_server
    from lifecycle.entrypoints.startup import load_settings, preflight
    from lifecycle.logs import configure_logging

    settings = load_settings()
    if "public_url" not in settings.model_fields_set:
        # The mailed links open the portal on the address served here (LIFECYCLE_PUBLIC_URL
        # says otherwise, e.g. behind a proxy); the server's processes read the environment.
        local = host in ("127.0.0.1", "0.0.0.0", "::", "localhost")
        os.environ["LIFECYCLE_PUBLIC_URL"] = f"http://{'localhost' if local else host}:{port}"
        settings = load_settings()
    preflight(settings)  # a bad setting or a dependency away: one line and exit 2, not a traceback
    configure_logging(settings.log_format)
    if workers > 1 and settings.database_url.startswith("sqlite"):
        typer.echo("error: --workers > 1 needs PostgreSQL (LIFECYCLE_DATABASE_URL=postgresql://...); "
                   "the embedded SQLite store is for one process", err=True)
        raise typer.Exit(2)

    from lifecycle.entrypoints.keys_cli import first_admin_key

    with claim_port(host, port):  # a port held by anything else: one line and exit 2
        try:
            first_admin_key(settings.log_format)
        except Exception as error:  # noqa: BLE001 - a store that cannot be reached: the server says why
            logging.getLogger("lifecycle").warning("could not look for API keys (%s); starting anyway",
                                                   type(error).__name__)
        status = run_server(host, port, workers, log_format=settings.log_format)
    if status:
        raise typer.Exit(status)


from lifecycle.entrypoints.bulk_cli import bulk_cli  # noqa: E402

cli.add_typer(bulk_cli, name="bulk")

accounts_cli = Typer(help="Support-desk aids for accounts.", no_args_is_help=True)
cli.add_typer(accounts_cli, name="accounts")


@accounts_cli.command("confirmation-token")
def confirmation_token(account_id: str) -> None:
    """Print the token of an account's confirmation URL, for a user whose mail did not
    arrive (seed E6). It activates the account only while it is provisional and unexpired."""
    from uuid import UUID

    from lifecycle.domain.errors import DomainError
    from lifecycle.entrypoints.startup import command_runtime

    try:
        wanted = UUID(account_id)
    except ValueError:
        typer.echo(f"error: {account_id[:60]!r} is not an account id (a UUID such as the sign-up answered)", err=True)
        raise typer.Exit(1) from None
    with command_runtime() as runtime:
        try:
            typer.echo(runtime.application.accounts.confirmation_token(wanted))
        except (DomainError, ValueError) as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(1) from None


from lifecycle.entrypoints.worker_cli import notifications_cli, timers_cli, worker  # noqa: E402

cli.command()(worker)
cli.add_typer(notifications_cli, name="notifications")
cli.add_typer(timers_cli, name="timers")


from lifecycle.entrypoints.keys_cli import keys_cli  # noqa: E402
from lifecycle.entrypoints.operations_cli import audit_cli, projections_cli, store_cli  # noqa: E402

cli.add_typer(keys_cli, name="keys")
cli.add_typer(audit_cli, name="audit")
cli.add_typer(projections_cli, name="projections")
cli.add_typer(store_cli, name="store")

from lifecycle.entrypoints.privacy_cli import privacy_cli  # noqa: E402

cli.add_typer(privacy_cli, name="privacy")


from lifecycle.entrypoints.startup import check_command, run_reporting_startup_errors  # noqa: E402

cli.command("check")(check_command)


def main() -> None:
    run_reporting_startup_errors(cli)


if __name__ == "__main__":
    main()
