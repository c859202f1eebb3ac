"""The `lifecycle` command."""

from __future__ import annotations

import typer
import uvicorn

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
    uvicorn.run("api.main:app", host=host, port=port, workers=workers, log_level="info")


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
