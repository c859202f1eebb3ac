"""The `lifecycle` command."""

from __future__ import annotations

import socket

import typer
import uvicorn

try:  # the protocol uvicorn's "auto" would pick: httptools when installed, else h11
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _HTTPProtocol
except ImportError:
    from uvicorn.protocols.http.h11_impl import H11Protocol as _HTTPProtocol

cli = typer.Typer(help="Support contract lifecycle service.", no_args_is_help=True)


@cli.callback()
def _commands() -> None:
    """Support contract lifecycle service."""


@cli.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
    workers: int = typer.Option(1, help="Server processes (PostgreSQL only: SQLite is one process)."),
) -> None:
    """Run the HTTP API on the event store of LIFECYCLE_DATABASE_URL."""
    uvicorn.run("api.main:app", host=host, port=port, workers=workers, log_level="info", http=NoDelayHTTPProtocol)


class NoDelayHTTPProtocol(_HTTPProtocol):
    """uvicorn's HTTP/1.1 protocol with Nagle's algorithm off on every connection.

    With --workers N, uvicorn binds the listening socket itself with proto 0, so asyncio does
    not set TCP_NODELAY on accepted sockets, and every keep-alive answer then waits ~40 ms for
    the client's delayed ACK (uvicorn issue #3149). A single process is not affected.
    """

    def connection_made(self, transport) -> None:  # noqa: ANN001
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)


accounts_cli = typer.Typer(help="Support-desk aids for accounts.", no_args_is_help=True)
cli.add_typer(accounts_cli, name="accounts")


@accounts_cli.command("confirmation-token")
def confirmation_token(account_id: str) -> None:
    """Print the token of an account's confirmation URL, for a user whose mail did not
    arrive (seed E6). It activates the account only while it is provisional and unexpired."""
    from uuid import UUID

    from lifecycle.bootstrap import build_application
    from lifecycle.domain.errors import DomainError
    from lifecycle.settings import Settings

    application = build_application(Settings())
    try:
        typer.echo(application.confirmation_token(UUID(account_id)))
    except (DomainError, ValueError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    finally:
        application.close()


from workers.cli import notifications_cli, timers_cli, worker  # noqa: E402

cli.command()(worker)
cli.add_typer(notifications_cli, name="notifications")
cli.add_typer(timers_cli, name="timers")


from lifecycle.operations_cli import audit_cli, projections_cli  # noqa: E402

cli.add_typer(audit_cli, name="audit")
cli.add_typer(projections_cli, name="projections")


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
