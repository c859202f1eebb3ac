"""`lifecycle bulk import FILE --company SU… [--dry-run]`: a sheet registered from the command
line, in this process, with a progress bar; the result sheet is written beside the input.
Exit 0 when no row was refused, 1 when some were, 2 for a file that cannot be read."""

from __future__ import annotations

from pathlib import Path

import typer

from lifecycle.entrypoints.cli_help import Typer

bulk_cli = Typer(help="Bulk registration from Excel sheets (K-1).", no_args_is_help=True)


@bulk_cli.command("import")
def import_sheet(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="The filled sheet (.xlsx)."),
    company: str = typer.Option(..., "--company", help="The company's contract number (SU + 8 digits)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate every row; register nothing."),
) -> None:
    """Register every row of FILE for the company; writes NAME.result.xlsx beside it."""
    from lifecycle.bulk.sheets import RowResult, RowStatus, write_results
    from lifecycle.domain.access import SYSTEM_CLI, acting_as
    from lifecycle.domain.errors import DomainError
    from lifecycle.entrypoints.startup import command_runtime
    from lifecycle.progress import progress_bar

    with command_runtime() as runtime:
        settings, application, bulk = runtime.settings, runtime.application, runtime.bulk
        content = file.read_bytes()
        with acting_as(SYSTEM_CLI), progress_bar(file.name, unit="rows") as progress:
            try:
                contract = application.companies.contract_by_number(company)
                answer, _ = bulk.submit(
                    contract.id, content, file.name, dry_run=dry_run, run_here=True, progress=progress,
                )
            except DomainError as error:
                typer.echo(f"error: {error.code}: {error.message_ja} ({error.detail})", err=True)
                raise typer.Exit(2 if error.code.startswith("BULK_") else 1) from None
        results = [RowResult(r["row"], RowStatus(r["status"]), r["code"], r["message_ja"], r["detail"])
                   for r in answer["rows"]]
        out = file.with_name(f"{file.stem}.result.xlsx")
        out.write_bytes(write_results(content, results, max_bytes=max(settings.bulk_max_bytes, len(content))))
        typer.echo(f"{answer['registered']} registered, {answer['already_registered']} already registered, "
                   f"{answer['refused']} refused, {answer['empty']} empty: {out}")
        if answer["refused"]:
            raise typer.Exit(1)
