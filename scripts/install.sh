#!/usr/bin/env bash
# Installs the locked dependencies (requirements.lock, checked against its hashes) and the
# project itself into .venv (created when missing). Does nothing when requirements.lock,
# pyproject.toml and the venv's Python are unchanged since the last successful install: their
# hash is kept in .venv/.install-stamp, written only once everything is installed.
# After editing the dependencies in pyproject.toml, regenerate the lock: bash scripts/lock.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
stamp=.venv/.install-stamp
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
state=$(.venv/bin/python -c '
import hashlib, sys
h = hashlib.sha256(sys.version.encode())
for name in ("requirements.lock", "pyproject.toml"):
    data = open(name, "rb").read()
    h.update(b"\0%s\0%d\0" % (name.encode(), len(data)) + data)
print(h.hexdigest())')
if [ -x .venv/bin/lifecycle ] && [ "$(cat "$stamp" 2>/dev/null)" = "$state" ]; then
  exit 0
fi
rm -f "$stamp"
.venv/bin/python -m pip install --quiet --require-hashes -r requirements.lock
# setuptools comes from the lock, so the project's build needs no isolated environment.
.venv/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
if ! .venv/bin/python -m pip check >/dev/null; then
  .venv/bin/python -m pip check >&2 || true
  echo "requirements.lock does not satisfy pyproject.toml: run bash scripts/lock.sh" >&2
  exit 1
fi
echo "$state" >"$stamp"
