#!/usr/bin/env bash
# Regenerates requirements.lock from pyproject.toml: every runtime and test dependency, and the
# build backend (setuptools), pinned with their hashes; then requirements-runtime.lock, the same
# pins without the test tools, which the Docker image installs. Run it after editing the
# dependencies in pyproject.toml, then commit the three files. Pins already in the lock stay unless pyproject.toml
# needs them changed; arguments go to pip-compile (`--upgrade`, `--upgrade-package NAME`).
# pip-tools runs from a throwaway venv; pip's own configuration (indexes) applies as for pip.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  echo "the lock is for Python 3.11: set PYTHON to a Python 3.11 interpreter" >&2
  exit 1
fi
tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
"$PYTHON" -m venv "$tools"
"$tools/bin/python" -m pip install --quiet "pip-tools>=7.4,<8"
CUSTOM_COMPILE_COMMAND="bash scripts/lock.sh" "$tools/bin/pip-compile" --quiet \
  --extra test --build-deps-for editable --allow-unsafe --strip-extras --generate-hashes \
  --no-emit-index-url --no-emit-find-links --no-emit-trusted-host \
  -o requirements.lock "$@" pyproject.toml
# The runtime lock takes its versions from the full one (-c), so both install the same builds.
rm -f requirements-runtime.lock
CUSTOM_COMPILE_COMMAND="bash scripts/lock.sh" "$tools/bin/pip-compile" --quiet \
  --build-deps-for editable --allow-unsafe --strip-extras --generate-hashes \
  --no-emit-index-url --no-emit-find-links --no-emit-trusted-host \
  -c requirements.lock -o requirements-runtime.lock pyproject.toml
