"""`lifecycle audit ...` and `lifecycle projections ...`: the auditor's export and its check,
and operating the read models."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from lifecycle.entrypoints.cli_help import Typer

audit_cli = Typer(help="The auditor's verifiable export of the whole log.", no_args_is_help=True)
projections_cli = Typer(help="The read models: status and rebuilds.", no_args_is_help=True)


@audit_cli.command("export")
def audit_export(
    output: Path | None = typer.Option(None, "--output", "-o", help="Write to this file instead of standard output."),
) -> None:
    """Write every event of the log as JSON Lines with a hash chain."""
    from lifecycle.audit import export_log
    from lifecycle.entrypoints.startup import command_runtime
    from lifecycle.progress import progress_bar

    with command_runtime() as runtime:
        recorder = runtime.application.recorder
        with progress_bar("audit export") as progress:
            if output is None:
                count = export_log(recorder, sys.stdout, progress=progress)
            else:
                with output.open("w", encoding="utf-8") as out:
                    count = export_log(recorder, out, progress=progress)
        typer.echo(f"exported {count} events", err=True)


@audit_cli.command("verify")
def audit_verify(file: Path = typer.Argument(..., exists=True, dir_okay=False, help="An export to check.")) -> None:
    """Exit 0 when the export is unaltered; otherwise exit 1 naming the first bad position."""
    from rich.progress import open as open_with_progress

    from lifecycle.audit import verify_log
    from lifecycle.progress import stderr_console

    console = stderr_console()
    # The export's events are counted only on its closing line: the bar follows the bytes read.
    with open_with_progress(file, encoding="utf-8", description="audit verify", console=console,
                            disable=not console.is_terminal) as lines:
        verdict = verify_log(lines)
    typer.echo(str(verdict), err=not verdict.ok)
    if not verdict.ok:
        raise typer.Exit(1)


@projections_cli.command("rebuild")
def projections_rebuild(
    name: str | None = typer.Argument(None, help="One projection; all when omitted."),
) -> None:
    """Replay the whole log into fresh tables and swap them in; running services keep reading."""
    from lifecycle.domain.errors import DomainError
    from lifecycle.entrypoints.startup import command_runtime
    from lifecycle.progress import progress_bar

    with command_runtime() as runtime:
        try:
            read_models = runtime.read_models
            for projection in [name] if name else list(read_models.runners):
                with progress_bar(projection) as progress:
                    position = read_models.rebuild(projection, progress=progress)
                typer.echo(f"{projection}: rebuilt up to log position {position}")
        except DomainError as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(1) from None


@projections_cli.command("status")
def projections_status() -> None:
    """Each projection's position against the head of the log."""
    from lifecycle.entrypoints.startup import command_runtime

    with command_runtime() as runtime:
        for status in runtime.read_models.status():
            typer.echo(json.dumps(status))
