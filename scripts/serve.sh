#!/usr/bin/env bash
# Installs the project, then runs the service on its embedded default (SQLite under ./var,
# in-process worker, mails to ./var/mail). Arguments go to `lifecycle serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/lifecycle serve "$@"
