"""Memory of one embedded `lifecycle serve` as registrations accumulate (issue 22, item 6).

The script makes an embedded store of its own (SQLite in a temporary folder, no broker:
the server runs the read models, the scheduler and the mail worker itself), and sets it up
in process before the server starts: one verified account and API key, --companies
companies each with one site and one fault contact (through the application's commands),
and one shipped unit and sold ticket per registration (saved in bulk). It then starts
`lifecycle serve` and registers tickets over HTTP (`POST /v1/sites/{id}/registrations`,
keep-alive clients as in registrations_http.py), request j at company j mod --companies,
and prints the server's resident memory (VmRSS from /proc) at start and after every
--checkpoint registrations.

    .venv/bin/python benchmarks/memory.py              # 5,000 companies, 20,000 registrations
    .venv/bin/python benchmarks/memory.py --smoke

Target: the RSS after 20,000 registrations within 1.5x of the RSS after 2,000 (exit status
1 otherwise, or when a registration is refused). With --smoke only a refusal fails it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import registrations_http as http  # noqa: E402 - benchmarks/: the client, the server process, the jobs
from smoke import parse_args  # noqa: E402

TARGET_GROWTH = 1.5
SITE = {
    "name": "東京本社", "postal_code": "1000001", "street": "千代田1-1", "building": "サンプルビル3F",
    "person": "佐藤 花子", "phone": "03-1234-5678", "email": "hanako@example.co.jp",
}
CONTACT = {
    "company": "株式会社サンプル", "postal_code": "1000001", "street": "千代田1-1", "person": "鈴木 一郎",
    "phone": "03-2345-6789", "mail1": "noc@example.co.jp", "mail2": "ichiro@example.co.jp",
}


def rss_mb(pids: list[int]) -> float:
    """Resident memory of the processes, in MB (VmRSS)."""
    total_kb = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
        except OSError:
            continue
    return total_kb / 1024


def server_pids(service: http.Service) -> list[int]:
    """The processes that serve (with one worker: the server process itself)."""
    pids = service.pids()
    return pids[1:] if len(pids) > 1 and service.workers > 1 else pids[:1]


def set_up(settings, companies: int, registrations: int, log) -> list[http.Job]:  # noqa: ANN001
    """Reference data, saved in process before the server starts."""
    from lifecycle.bootstrap import build_access, build_application
    from tests.fakes import FakePostalCodes

    app = build_application(settings, postal_codes=FakePostalCodes())
    try:
        started = time.perf_counter()
        account = app.accounts.sign_up("bench@example.co.jp", "secret123", "山田 太郎", "株式会社サンプル",
                                       "03-1234-5678", True)
        app.accounts.verify_account(app.accounts.confirmation_token(account["account_id"]))
        _, token = build_access(settings, app).create_key("benchmark", ["registrations", "reference-data"])
        http.AUTHORIZATION["Authorization"] = f"Bearer {token}"
        site_ids = []
        for n in range(companies):
            company = app.companies.register_company(account["account_id"], f"株式会社ベンチ{n}")
            site = app.companies.add_site(company["company_id"], SITE)
            app.companies.add_fault_contact(site["site_id"], CONTACT)
            site_ids.append(str(site["site_id"]))
            if (n + 1) % 1000 == 0 and n + 1 < companies:
                log(f"  ... {n + 1:,} companies: {time.perf_counter() - started:.1f} s")
        log(f"  {companies:,} companies with a site and a fault contact: {time.perf_counter() - started:.1f} s")
        return http.save_units_and_tickets(app, site_ids, registrations, log)
    finally:
        app.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--companies", type=int, default=5000, help="companies (one site each) registered at")
    parser.add_argument("--registrations", type=int, default=20000)
    parser.add_argument("--checkpoint", type=int, default=2000, help="RSS printed after every this many")
    parser.add_argument("--clients", type=int, default=4, help="concurrent keep-alive connections")
    parser.add_argument("--server-env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra environment for the server, e.g. LIFECYCLE_CONTRACT_CACHE_SIZE=100 (repeatable)")
    args = parse_args(parser, companies=20, registrations=60, checkpoint=20, clients=2)

    from lifecycle.settings import Settings

    def log(message: str) -> None:
        print(message, flush=True)

    workdir = Path(tempfile.mkdtemp(prefix="lifecycle-memory-"))
    db_url = f"sqlite:///{workdir / 'lifecycle.sqlite3'}"
    secret_key = os.urandom(16).hex()
    service = None
    errors = 0
    points: list[tuple[int, float]] = []
    try:
        log(f"machine: {http.machine()}; code {http.code_version()}; load average "
            f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")
        settings = Settings(database_url=db_url, secret_key=secret_key, var_dir=workdir / "var", _env_file=None)
        log("setting up (in process):")
        jobs = set_up(settings, args.companies, args.registrations, log)
        extra_env = dict(item.split("=", 1) for item in args.server_env)
        service = http.Service(db_url, 1, 10, secret_key, workdir, extra_env)
        service.start()
        pids = server_pids(service)
        http.wait_until_idle(service)
        start_rss = rss_mb(pids)
        log(f"lifecycle serve (embedded, SQLite) on 127.0.0.1:{service.port}"
            + "".join(f", {k}={v}" for k, v in extra_env.items()) + f"; RSS at start {start_rss:.1f} MB")
        log(f"{'registrations':>13} {'per s':>7} {'errors':>6} {'RSS MB':>7}")
        done = 0
        while done < len(jobs):
            block = jobs[done:done + args.checkpoint]
            result = asyncio.run(http.run_clients(service.port, block, args.clients, duration=1e9))
            errors += result.errors
            for sample in result.error_samples:
                log(f"  error: {sample}")
            done += len(block)
            points.append((done, rss_mb(pids)))
            log(f"{done:>13,} {result.tps:7.1f} {result.errors:6d} {points[-1][1]:7.1f}")
    finally:
        if service is not None:
            service.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    first = next((rss for n, rss in points if n >= min(args.checkpoint, args.registrations)), float("nan"))
    last = points[-1][1] if points else float("nan")
    growth = last / first if first else float("nan")
    print(f"RSS after {points[0][0]:,}: {first:.1f} MB; after {points[-1][0]:,}: {last:.1f} MB; "
          f"growth {growth:.2f}x (target <= {TARGET_GROWTH}x); errors {errors}")
    if args.smoke:  # too few registrations for the target: only a refusal fails the run
        return 0 if errors == 0 else 1
    return 0 if errors == 0 and growth <= TARGET_GROWTH else 1


if __name__ == "__main__":
    sys.exit(main())
