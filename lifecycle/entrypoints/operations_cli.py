"""`lifecycle audit ...` and `lifecycle projections ...`: the auditor's export and its check,
and operating the read models."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from lifecycle.entrypoints.cli_help import Typer

audit_cli = Typer(help="The auditor's verifiable export of the whole log.", no_args_is_help=True)
store_cli = Typer(help="The event store: moving it to another database.", no_args_is_help=True)
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


def _audit_log():  # noqa: ANN202 - (settings, application, AuditLog)
    from lifecycle.bootstrap import build_application, build_audit_log, build_read_models
    from lifecycle.settings import Settings

    settings = Settings()
    application = build_application(settings)
    return settings, application, build_audit_log(settings, application, build_read_models(settings, application))


@audit_cli.command("checkpoint")
def audit_checkpoint() -> None:
    """Bring the audit tree up to the log's head and sign a checkpoint of it now; print the note."""
    _, application, audit = _audit_log()
    try:
        audit.catch_up()
        typer.echo(audit.checkpoint().note, nl=False)
    finally:
        application.close()


@audit_cli.command("key")
def audit_key() -> None:
    """Print the verifier key of the checkpoints (C2SP signed note: NAME+KEYID+KEY)."""
    from lifecycle.checkpoints import Signer
    from lifecycle.settings import Settings

    settings = Settings()
    typer.echo(Signer(settings.audit_origin, settings.audit_key_seed()).verifier_key())


@audit_cli.command("prove")
def audit_prove(
    index: int = typer.Argument(..., min=0, help="The event's leaf index (0 for the log's first event)."),
) -> None:
    """Print the event at a leaf index with its inclusion proof and the signed checkpoint it is
    proved against (the latest, signed now if it does not cover the event), as one JSON
    document for `lifecycle audit verify --proof`."""
    from lifecycle.audit import export_record
    from lifecycle.domain.errors import DomainError

    _, application, audit = _audit_log()
    try:
        audit.catch_up()
        latest = audit.store.latest()
        checkpoint = latest if latest is not None and index < latest.tree_size else audit.checkpoint()
        proof = audit.inclusion(index, checkpoint.tree_size)
        position = audit.tree.position_of(index)
        [stored] = application.recorder.select_notifications(start=position, limit=1)
        typer.echo(json.dumps({"event": export_record(stored), "proof": proof.as_dict(), "checkpoint": checkpoint.note},
                              ensure_ascii=False, indent=1))
    except DomainError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    finally:
        application.close()


def _verifier_key(text: str):  # noqa: ANN202 - a Verifier
    from lifecycle.checkpoints import NoteError, Verifier

    path = Path(text)
    try:
        return Verifier.parse(path.read_text(encoding="utf-8") if path.is_file() else text)
    except NoteError as error:
        typer.echo(f"error: --key: {error}", err=True)
        raise typer.Exit(2) from None


@audit_cli.command("verify")
def audit_verify(
    file: Path | None = typer.Argument(None, exists=True, dir_okay=False, help="An export to check."),
    key: str | None = typer.Option(None, "--key", help="The verifier key (text or a file), as `audit key` prints."),
    checkpoints: list[Path] = typer.Option(
        [], "--checkpoint", exists=True, dir_okay=False,
        help="A signed checkpoint; give two (earlier first) with --consistency."),
    proof: Path | None = typer.Option(
        None, "--proof", exists=True, dir_okay=False,
        help="An event with its proof, as `audit prove` prints (or {\"event\", \"proof\"}: an export's record "
             "and the API's inclusion proof, checked against the last --checkpoint)."),
    consistency: Path | None = typer.Option(
        None, "--consistency", exists=True, dir_okay=False,
        help="A consistency proof (the API's JSON) between the two checkpoints."),
    earlier: Path | None = typer.Option(None, "--earlier", exists=True, dir_okay=False,
                                        help="An earlier export: where the export first differs from it."),
    store: bool = typer.Option(False, "--store", help="Check the store of LIFECYCLE_DATABASE_URL itself."),
) -> None:
    """Check, with the verifier key only: an export's hash chain (FILE alone, as before); a
    checkpoint's signature; the export against a checkpoint; an event's inclusion (--proof); that a
    later checkpoint extends an earlier one (--consistency); where a rewritten export first
    differs from an earlier one (--earlier); the store's events against its tree and checkpoints
    (--store). Exit 0 when every check passes; otherwise exit 1 naming what failed."""
    from lifecycle.audit_verify import (
        Finding, check_consistency, check_exports, check_export, check_inclusion, check_note, export_leaf_hashes,
    )

    findings: list[Finding] = []
    if file is not None:
        findings.append(_verify_chain(file))
    needs_key = checkpoints or proof or consistency
    if needs_key and not key and not store:
        typer.echo("error: --checkpoint, --proof and --consistency need --key", err=True)
        raise typer.Exit(2)
    verifier = _verifier_key(key) if key else None
    signed = []
    for path in checkpoints:
        found, checkpoint = check_note(verifier, path.read_text(encoding="utf-8"), f"checkpoint {path.name}")
        findings.append(found)
        signed.append(checkpoint)
    hashes = export_leaf_hashes(file.open(encoding="utf-8")) if file is not None else None
    if hashes is not None:
        for checkpoint in signed:
            if checkpoint is not None:
                findings.append(check_export(checkpoint, hashes))
        if earlier is not None:
            findings.append(check_exports(hashes, export_leaf_hashes(earlier.open(encoding="utf-8"))))
    if proof is not None:
        document = json.loads(proof.read_text(encoding="utf-8"))
        if "checkpoint" not in document and checkpoints:
            # {"event": an export record, "proof": the API's inclusion proof}, against --checkpoint
            document["checkpoint"] = checkpoints[-1].read_text(encoding="utf-8")
        findings.append(check_inclusion(verifier, document))
    if consistency is not None:
        if len(signed) != 2 or None in signed:
            typer.echo("error: --consistency needs two good --checkpoint files, the earlier first", err=True)
            raise typer.Exit(2)
        findings.append(check_consistency(signed[0], signed[1], json.loads(consistency.read_text())["hashes"]))
    if store:
        findings.extend(_verify_store(verifier))
    if not findings:
        typer.echo("error: nothing to verify: give an export, --proof, --checkpoint or --store", err=True)
        raise typer.Exit(2)
    for finding in findings:
        typer.echo(str(finding), err=not finding.ok)
    if not all(f.ok for f in findings):
        raise typer.Exit(1)


def _verify_chain(file: Path):  # noqa: ANN202 - a Finding
    from rich.progress import open as open_with_progress

    from lifecycle.audit import verify_log
    from lifecycle.audit_verify import Finding
    from lifecycle.progress import stderr_console

    console = stderr_console()
    # The export's events are counted only on its closing line: the bar follows the bytes read.
    with open_with_progress(file, encoding="utf-8", description="audit verify", console=console,
                            disable=not console.is_terminal) as lines:
        verdict = verify_log(lines)
    text = str(verdict)
    return Finding(verdict.ok, text.removeprefix("OK: "))


def _verify_store(verifier):  # noqa: ANN001, ANN202 - Findings
    from lifecycle.audit_verify import Finding, check_store
    from lifecycle.checkpoints import Verifier

    settings, application, audit = _audit_log()
    try:
        audit.catch_up()
        verifier = verifier or Verifier.parse(audit.signer.verifier_key())
        notes = [(c.tree_size, c.note) for c in audit.store.all()]
        result = check_store(application.recorder, audit.tree, notes, verifier)
        return [*result.findings, Finding(True, f"the store's tree: size {result.size}, root {result.root.hex()}")]
    finally:
        application.close()


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
            names = [name] if name else list(read_models.runners)
            with progress_bar(name or "read models") as progress:  # all of them read the log together
                positions = read_models.rebuild_together(names, progress=progress)
            for projection, position in positions.items():
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


@store_cli.command("copy")
def store_copy(
    source: str = typer.Option(..., "--from", help="The store to copy: sqlite:///PATH or postgresql://..."),
    target: str = typer.Option(..., "--to", help="An empty store to copy into."),
    source_schema: str | None = typer.Option(None, "--from-schema", help="PostgreSQL schema of --from "
                                             "(default: LIFECYCLE_DATABASE_SCHEMA)."),
    target_schema: str | None = typer.Option(None, "--to-schema", help="PostgreSQL schema of --to "
                                             "(default: LIFECYCLE_DATABASE_SCHEMA)."),
) -> None:
    """Copy the log (with its positions) and the tables of state into an empty store, rebuild
    the read models there, and check that both stores give the same audit tree root at the same
    size. Refuses a target that holds anything. Stop the service first: writes made during the
    copy would not be in the target."""
    from lifecycle.bootstrap import build_application, build_audit_log, build_read_models, ensure_state_tables
    from lifecycle.progress import progress_bar
    from lifecycle.settings import Settings
    from lifecycle.store_copy import Store, TargetNotEmpty, check_empty, copy_events, copy_state

    settings = Settings()
    ends = []
    for url, schema in ((source, source_schema), (target, target_schema)):
        ends.append(settings.model_copy(update={
            "database_url": url, "database_schema": settings.database_schema if schema is None else schema}))
    if (ends[0].database_url, ends[0].database_schema) == (ends[1].database_url, ends[1].database_schema):
        typer.echo("error: --from and --to are the same store", err=True)
        raise typer.Exit(2)
    apps = [build_application(end) for end in ends]
    try:
        for end, app in zip(ends, apps):
            ensure_state_tables(end, app)
        stores = [Store(app.recorder.datastore, app.recorder.events_table_name) for app in apps]
        try:
            check_empty(stores[1], apps[1].recorder.max_notification_id())
        except TargetNotEmpty as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(1) from None
        with progress_bar("events") as progress:
            count = copy_events(apps[0].recorder, stores[1], progress=progress)
        typer.echo(f"copied {count} events", err=True)
        with progress_bar("state tables") as progress:
            copied = copy_state(stores[0], stores[1], progress=progress)
        typer.echo("copied " + ", ".join(f"{table}: {n}" for table, n in copied.items()), err=True)
        trees = []
        for end, app in zip(ends, apps):
            read_models = build_read_models(end, app)
            if app is apps[1]:
                with progress_bar("rebuild read models") as progress:
                    read_models.rebuild_together(list(read_models.runners), progress=progress)
            audit = build_audit_log(end, app, read_models)
            audit.catch_up()
            size = audit.tree.size()
            trees.append((size, audit.tree.root(size)))
        for label, (size, root) in zip(("from", "to"), trees):
            typer.echo(f"{label}: tree size {size}, root {root.hex()}")
        if trees[0] != trees[1]:
            typer.echo("error: the stores give different audit tree roots", err=True)
            raise typer.Exit(1)
        typer.echo("OK: both stores give the same audit tree root at the same size")
    finally:
        for app in apps:
            app.close()
