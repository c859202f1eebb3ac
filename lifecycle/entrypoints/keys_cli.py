"""`lifecycle keys ...`: internal services' API keys (SPEC 4, access). Creating and revoking
a key are events (an auditor sees who could do what, when); a key is shown once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer

from lifecycle.entrypoints.cli_help import Typer

if TYPE_CHECKING:
    from lifecycle.application.access import Access

keys_cli = Typer(help="API keys of internal services: create, list, revoke.", no_args_is_help=True)

ROLES_HELP = "reference-data, registrations, callcenter, audit, dashboards, admin, events"


@contextmanager
def _access() -> Iterator[Access]:
    from lifecycle.domain.access import SYSTEM_CLI, acting_as
    from lifecycle.entrypoints.startup import command_runtime

    with command_runtime() as runtime, acting_as(SYSTEM_CLI):
        yield runtime.access


def _fail(error: Exception) -> None:
    typer.echo(f"error: {error}", err=True)
    raise typer.Exit(1)


@keys_cli.command("create")
def create_key(
    name: str = typer.Argument(..., help="What the key is for, e.g. the calling service's name."),
    role: list[str] = typer.Option(..., "--role", "-r", metavar="ROLE", help=f"A role (repeat for more): {ROLES_HELP}."),
) -> None:
    """Make a key; it is printed alone on the last line, this once (only its hash is kept)."""
    from lifecycle.domain.errors import DomainError

    with _access() as access:
        try:
            view, token = access.create_key(name, role)
        except DomainError as error:
            _fail(error)
            return
    typer.echo(f"created API key {view['name']} ({view['key_id']}) with roles {', '.join(view['roles'])}", err=True)
    typer.echo(token)


@keys_cli.command("list")
def list_keys() -> None:
    """Every key: id, name, roles, created, last used, revoked."""
    with _access() as access:
        keys = access.keys()
    if not keys:
        typer.echo("no API keys")
    for key in keys:
        state = f"revoked {key['revoked_at']:%Y-%m-%d %H:%M}" if key["revoked_at"] else "active"
        used = f"{key['last_used_at']:%Y-%m-%d %H:%M}" if key["last_used_at"] else "never"
        typer.echo(
            f"{key['key_id']}  {key['name']:<20} {','.join(key['roles']):<30} "
            f"created {key['created_at']:%Y-%m-%d %H:%M}  last used {used}  {state}"
        )


@keys_cli.command("revoke")
def revoke_key(key: str = typer.Argument(..., help="The key's name or id.")) -> None:
    """Revoke a key: every process refuses it from its next request."""
    from lifecycle.domain.errors import DomainError

    with _access() as access:
        try:
            view = access.revoke_key(key)
        except DomainError as error:
            _fail(error)
            return
    typer.echo(f"revoked API key {view['name']} ({view['key_id']})")


def first_admin_key(log_format: str = "text") -> None:
    """On a store with no keys, the first `lifecycle serve` makes an admin key and prints it
    on stderr; with LIFECYCLE_LOG_FORMAT=json as one log line, so stderr stays JSON lines."""
    from lifecycle.domain.errors import ApiKeyNameTaken

    with _access() as access:
        if access.has_keys():
            return
        try:
            view, token = access.create_key("admin", ["admin"])
        except ApiKeyNameTaken:  # another process starting at the same moment made it
            return
    lines = [
        "No API keys yet: made one named 'admin' with the admin role. It is shown this once:",
        f"  {token}",
        "Make keys for services with: lifecycle keys create NAME --role ROLE [--role ROLE ...]",
        f"(roles: {ROLES_HELP})",
    ]
    if log_format == "json":
        import logging

        logging.getLogger("lifecycle.access").warning(
            " ".join(line.strip() for line in lines), extra={"api_key_name": "admin", "roles": ["admin"]})
    else:
        typer.echo("\n".join(lines), err=True)
