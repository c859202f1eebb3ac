"""The layers' rule (docs/architecture.md): the core of the service names ports
(lifecycle/ports.py), never their implementations; only lifecycle/bootstrap.py picks adapters,
and only entry points start processes. The domain and the aggregates know nothing of the web,
SQL or the broker either. Imports are read from the source (inside functions too), so a lazy
import breaks the rule as surely as one at the top."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE = ("domain", "aggregates", "application", "projections", "policies", "queries", "mail", "bulk")
OUTER = ("lifecycle.adapters", "lifecycle.entrypoints", "lifecycle.bootstrap", "api", "workers")
# What the domain and its aggregates may not name: the web, databases, the broker.
INFRASTRUCTURE = ("fastapi", "starlette", "uvicorn", "dramatiq", "redis", "psycopg", "psycopg_pool", "sqlite3",
                  "sqlalchemy", "eventsourcing.postgres", "eventsourcing.sqlite")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    package = module_name(path).split(".")
    return imports_in(path.read_text(encoding="utf-8"), package if path.name == "__init__.py" else package[:-1])


def imports_in(source: str, package: list[str]) -> set[str]:
    """Every module the source imports, relative imports resolved in `package`, `from m import
    n` as m and m.n."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            parent = package[: len(package) - node.level + 1] if node.level else []
            base = ".".join([*parent, *([node.module] if node.module else [])])
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return found


def names_any(modules: set[str], prefixes: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes))


def core_modules(*folders: str) -> list[Path]:
    return sorted(path for folder in folders for path in (ROOT / "lifecycle" / folder).rglob("*.py"))


@pytest.mark.parametrize("folder", CORE)
def test_the_core_imports_no_adapter_and_no_entry_point(folder: str) -> None:
    offenders = {module_name(path): names_any(imported_modules(path), OUTER) for path in core_modules(folder)}
    assert not {name: names for name, names in offenders.items() if names}


def test_the_domain_and_the_aggregates_know_nothing_of_the_web_sql_or_the_broker() -> None:
    offenders = {module_name(path): names_any(imported_modules(path), INFRASTRUCTURE)
                 for path in core_modules("domain", "aggregates")}
    assert not {name: names for name, names in offenders.items() if names}


def test_the_check_sees_an_adapter_imported_inside_a_function_or_relatively() -> None:
    """The rule's own check: a lazy import of an adapter (as app.py once had) and a relative
    one are both found."""
    lazy = "def keys():\n    from lifecycle.adapters.personal_keys import InMemoryKeyStore\n"
    relative = "from ..adapters import clock\n"
    package = ["lifecycle", "application"]
    assert names_any(imports_in(lazy, package), OUTER) == [
        "lifecycle.adapters.personal_keys", "lifecycle.adapters.personal_keys.InMemoryKeyStore"]
    assert names_any(imports_in(relative, package), OUTER) == ["lifecycle.adapters", "lifecycle.adapters.clock"]
