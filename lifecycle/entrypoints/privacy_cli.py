"""`lifecycle privacy ...`: forgetting and disclosing a data subject's personal data, and
the retention of provisional accounts (docs/privacy.md)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import typer

from lifecycle.entrypoints.cli_help import Typer

privacy_cli = Typer(help="Personal data: forget, disclose, retention (APPI).", no_args_is_help=True)

KINDS = "account, site-person or fault-contact"


def _subject(kind: str, subject_id: str) -> tuple[Any, UUID]:
    from lifecycle.domain.privacy import SubjectKind

    try:
        parsed_kind = SubjectKind(kind)
    except ValueError:
        typer.echo(f"error: {kind[:40]!r} is not a kind of data subject ({KINDS})", err=True)
        raise typer.Exit(1) from None
    try:
        return parsed_kind, UUID(subject_id)
    except ValueError:
        typer.echo(f"error: {subject_id[:60]!r} is not an id (the UUID of the {kind})", err=True)
        raise typer.Exit(1) from None


@contextmanager
def _runtime() -> Iterator[Any]:
    """The service as one process assembles it, its read models caught up, acting as the
    command line."""
    from lifecycle.bootstrap import bootstrap
    from lifecycle.domain.access import SYSTEM_CLI, acting_as
    from lifecycle.entrypoints.startup import load_settings

    runtime = bootstrap(load_settings())
    try:
        runtime.read_models.catch_up()
        with acting_as(SYSTEM_CLI):
            yield runtime
    finally:
        runtime.stop()


def _print(document: dict[str, Any]) -> None:
    typer.echo(json.dumps(document, ensure_ascii=False, indent=2, default=str))


@privacy_cli.command("forget")
def forget(
    kind: str = typer.Argument(..., help=KINDS),
    subject_id: str = typer.Argument(..., help="The account, site or fault contact id."),
    reason: str = typer.Option(..., "--reason", help="Why (recorded in the PersonalDataErased event)."),
    force: bool = typer.Option(False, "--force", help="Forget an account even while it has live coverage."),
) -> None:
    """Destroy the subject's key and record PersonalDataErased: its personal fields read as
    "[erased]" everywhere from then on. Exit 1 with the reason when refused."""
    from lifecycle.domain.errors import DomainError

    parsed_kind, parsed_id = _subject(kind, subject_id)
    with _runtime() as runtime:
        try:
            _print(runtime.privacy.forget(parsed_kind, parsed_id, reason, force=force))
        except DomainError as error:
            typer.echo(f"error: {error.code}: {error.detail}", err=True)
            raise typer.Exit(1) from None


@privacy_cli.command("disclose")
def disclose(
    kind: str = typer.Argument(..., help=KINDS),
    subject_id: str = typer.Argument(..., help="The account, site or fault contact id."),
) -> None:
    """Print everything held about the subject, decrypted, as JSON."""
    from lifecycle.domain.errors import DomainError

    parsed_kind, parsed_id = _subject(kind, subject_id)
    with _runtime() as runtime:
        try:
            _print(runtime.privacy.disclose(parsed_kind, parsed_id))
        except DomainError as error:
            typer.echo(f"error: {error.code}: {error.detail}", err=True)
            raise typer.Exit(1) from None


@privacy_cli.command("migrate")
def migrate(
    to: str = typer.Option(..., "--to", help="The new store's URL (sqlite:///PATH or postgresql://...): empty."),
    to_schema: str = typer.Option("", "--to-schema", help="A PostgreSQL schema of its own for the new store."),
) -> None:
    """Copy the log of LIFECYCLE_DATABASE_URL, written before personal fields were sealed,
    into a new empty store with every personal field sealed, each event verified against the
    old one; then point LIFECYCLE_DATABASE_URL at the new store (docs/privacy.md)."""
    from lifecycle.application.migration import MigrationRefused
    from lifecycle.application.migration import migrate as copy_sealed
    from lifecycle.bootstrap import build_application
    from lifecycle.progress import progress_bar
    from lifecycle.entrypoints.startup import load_settings

    settings = load_settings()
    target_settings = settings.model_copy(update={"database_url": to, "database_schema": to_schema})
    if (target_settings.database_url, target_settings.database_schema) == (settings.database_url,
                                                                          settings.database_schema):
        typer.echo("error: --to names the store being migrated; give a new, empty one", err=True)
        raise typer.Exit(1)
    source, target = build_application(settings), build_application(target_settings)
    try:
        with progress_bar("privacy migrate") as progress:
            done = copy_sealed(source, target, progress)
    except MigrationRefused as refused:
        typer.echo(f"error: {refused}", err=True)
        raise typer.Exit(1) from None
    finally:
        source.close()
        target.close()
    typer.echo(f"copied {done.events} events into {to}, each read back and compared with the old store; "
               f"{done.recipients_assigned} mails' recipients assigned to their subjects. Point "
               "LIFECYCLE_DATABASE_URL at it; keep the old store (and an audit export of it) only as long as required.")


@privacy_cli.command("rotate-key")
def rotate_key(
    new_key: str = typer.Option(..., "--new-key", envvar="LIFECYCLE_NEW_PRIVACY_KEY",
                                help="The new key-encryption key: 64 hex digits (or LIFECYCLE_NEW_PRIVACY_KEY)."),
) -> None:
    """Wrap every data subject's key with a new key-encryption key (the current one is
    LIFECYCLE_PRIVACY_KEY, or var_dir's privacy_key); then start the service with the new one.
    Run it with the service stopped: a process still holding the old key cannot open keys
    made after the rotation."""
    from lifecycle.adapters.personal_keys import PersonalKeyStore, WrongKeyEncryptionKey, parse_kek
    from lifecycle.bootstrap import build_application
    from lifecycle.entrypoints.startup import load_settings

    try:
        kek = parse_kek(new_key)
    except WrongKeyEncryptionKey as error:
        typer.echo(f"error: {str(error).replace('LIFECYCLE_PRIVACY_KEY', '--new-key')}", err=True)
        raise typer.Exit(1) from None
    application = build_application(load_settings())
    try:
        keys = application.personal_keys
        if not isinstance(keys, PersonalKeyStore):
            typer.echo("error: the in-memory store keeps no keys to rotate", err=True)
            raise typer.Exit(1)
        count = keys.rewrap(kek)
    finally:
        application.close()
    typer.echo(f"{count} subjects' keys wrapped with the new key: set LIFECYCLE_PRIVACY_KEY to it "
               "(and replace var_dir's privacy_key file if the old one came from there), then start the service")
