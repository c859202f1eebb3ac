"""`--help` without typer's type noise: typer (0.27 on) shows every parameter's Python type
as `<int>`, `<str>`, `<bool>` (flags and `--help` too). Here an option that takes a value
shows it as click always did (`--port INTEGER`, `--as-of DATETIME`), and flags and
arguments show none: their name and help say it. The `lifecycle` command's Typer apps are
made with `Typer` below, whose commands and groups set that on their parameters (typer's
own `metavar=`, the one display setting it offers) before any help is drawn."""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

_WORDS = {"int": "INTEGER", "str": "TEXT", "float": "FLOAT", "bool": "BOOLEAN"}


def value_word(label: str) -> str:
    """typer's `<label>` as click's metavar: <int> -> INTEGER, <file> -> FILE,
    <list[str]> -> TEXT (a repeatable option), <json|text> -> [json|text]."""
    label = label.strip("<>")
    if label.startswith("list[") and label.endswith("]"):
        label = label[5:-1]
    if label in _WORDS:
        return _WORDS[label]
    return label.upper() if label.isidentifier() else f"[{label}]"


def _no_type(ctx: Any) -> None:
    return None


def plain(param: Any, ctx: Any) -> Any:
    if isinstance(param, TyperOption) and param.metavar is None:
        param.metavar = "" if param.is_flag or param.count else value_word(param.display_type(ctx))
    elif isinstance(param, TyperArgument):
        # typer draws an argument's type whatever its metavar: its name is enough.
        param.display_type_rich = _no_type  # type: ignore[method-assign]
    return param


class PlainHelpCommand(TyperCommand):
    def get_params(self, ctx: Any) -> list[Any]:  # with the help option, made per context
        return [plain(param, ctx) for param in super().get_params(ctx)]


class PlainHelpGroup(TyperGroup):
    def get_params(self, ctx: Any) -> list[Any]:
        return [plain(param, ctx) for param in super().get_params(ctx)]


class Typer(typer.Typer):
    """typer.Typer whose groups and commands draw plain help."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("cls", PlainHelpGroup)
        super().__init__(*args, **kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("cls", PlainHelpCommand)
        return super().command(*args, **kwargs)
