"""Issue 11, deliverable 6: `lifecycle <command> --help` shows no type noise (`<int>`,
`<bool>`, `<str>`, `<path>`…) for any command or subcommand: an option that takes a value
names it as click does (`--port INTEGER`), flags and arguments show none."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from lifecycle.entrypoints.cli import cli

TYPE_NOISE = re.compile(r"<[a-z][\w\[\]|,. -]*>")  # typer's <int>, <str>, <bool>, <path>, <list[str]>…


def command_paths() -> list[tuple[str, ...]]:
    def walk(command: object, path: tuple[str, ...]) -> list[tuple[str, ...]]:
        found = [path]
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            found += walk(sub, (*path, name))
        return found

    return walk(typer.main.get_command(cli), ())


PATHS = command_paths()


def test_every_command_is_walked() -> None:
    assert {("serve",), ("worker",), ("audit", "export"), ("projections", "rebuild"), ("timers", "rebuild"),
            ("keys", "create"), ("bulk", "import")} <= set(PATHS)


@pytest.mark.parametrize("path", PATHS, ids=[" ".join(p) or "lifecycle" for p in PATHS])
def test_help_has_no_type_noise(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output and "--help" in result.output
    assert not TYPE_NOISE.search(result.output), result.output


def test_serve_help_from_the_installed_command() -> None:
    completed = subprocess.run([sys.executable, "-m", "lifecycle", "serve", "--help"],
                               capture_output=True, text=True, timeout=60, check=False)
    assert completed.returncode == 0, completed.stderr
    assert not TYPE_NOISE.search(completed.stdout), completed.stdout
    lines = {line.split()[1]: line for line in completed.stdout.splitlines() if line.strip("│ ").startswith("--")}
    assert "INTEGER" in lines["--port"] and "[default: 8000]" in lines["--port"]
    assert "TEXT" in lines["--host"]
    assert lines["--help"].split()[2] == "Show"  # a flag: no type between the name and its help
