#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs the project into .venv, makes sure
# PostgreSQL and Redis answer on 127.0.0.1, then runs pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install.sh

# The portal's browser tests drive Debian's chromium with a Japanese font (never a browser
# downloaded at run time). Installed when missing; the package lists are fetched only if the
# packages cannot be found without them.
if ! command -v chromium >/dev/null 2>&1 || ! fc-list 2>/dev/null | grep -qi "Noto Sans CJK"; then
  echo "installing chromium and fonts-noto-cjk"
  sudo_=""; [ "$(id -u)" -eq 0 ] || sudo_="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo_ apt-get install -y --no-install-recommends chromium fonts-noto-cjk \
    || { $sudo_ apt-get update && $sudo_ apt-get install -y --no-install-recommends chromium fonts-noto-cjk; }
fi

pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }
if ! pg_up; then
  echo "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || true
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
fi
pg_up || { echo "PostgreSQL does not answer on 127.0.0.1:5432" >&2; exit 1; }

redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }
if ! redis_up; then
  echo "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
  for _ in $(seq 1 30); do redis_up && break; sleep 1; done
fi
redis_up || { echo "Redis does not answer on 127.0.0.1:6379" >&2; exit 1; }

exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
