"""Issue 17, deliverable 5: no test module imports another test module. What tests share
lives in tests/support.py, tests/scenario.py, tests/bulk_sheets.py, tests/fakes.py, the fault
suite's helpers and the conftest files; a test module can be read, moved or deleted alone."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def test_no_test_module_imports_another_test_module() -> None:
    offenders = {
        path.relative_to(TESTS.parent).as_posix(): sorted(name for name in imported_modules(path)
                                                          if name.split(".")[-1].startswith("test_"))
        for path in TESTS.rglob("*.py")
    }
    assert not {path: names for path, names in offenders.items() if names}
