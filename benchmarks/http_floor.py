"""The HTTP floor: what the same server machinery answers with nothing behind it.

`registrations_http.py` compares registrations with pgbench's append. This script measures
the part of a registration that no work on the domain or the store can remove: an app with
the registration route's shape (path parameter, JSON body validated by a pydantic model, a
synchronous handler on the thread pool, a 201 JSON answer) and an empty handler, served by
`lifecycle.entrypoints.server.serve` (the processes `lifecycle serve --workers N` runs: SO_REUSEPORT,
httptools, uvloop), loaded by the same keep-alive client at the same concurrencies.

    .venv/bin/python benchmarks/http_floor.py                     # 2 processes, 1/4/16 clients, 10 s each
    .venv/bin/python benchmarks/http_floor.py --workers 1 --duration 20

No database, no broker: the figures bound from above what any registration can reach here.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from pathlib import Path

from fastapi import FastAPI
from pydantic import BaseModel

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from smoke import parse_args  # noqa: E402 - benchmarks/smoke.py: the path is set just above

app = FastAPI()


class RegistrationBody(BaseModel):
    ticket_id: str
    verification_code: str
    serial: str


@app.post("/v1/sites/{site_id}/registrations", status_code=201)
def register(site_id: str, body: RegistrationBody) -> dict[str, str]:
    return {"site_id": site_id, "serial": body.serial, "ticket_id": body.ticket_id}


def main() -> int:
    from registrations_http import Job, free_port, machine, run_clients, terminate, wait_until_answering

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--duration", type=float, default=10.0)
    args = parse_args(parser, workers=1, concurrency=[1, 2], duration=0.5)

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-c",
         f"from lifecycle.entrypoints.server import serve; serve('127.0.0.1', {port}, {args.workers}, 'benchmarks.http_floor:app')"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        if not wait_until_answering(port, server):
            raise SystemExit("the server exited at start")
        time.sleep(2)  # every process listening
        print(f"machine: {machine()}; empty handler, {args.workers} server process(es)")
        print("clients      req/s   p50 ms   p95 ms   p99 ms  errors")
        for concurrency in args.concurrency:
            jobs = [Job("00000000-0000-0000-0000-000000000001", f"{n:08d}", f"BN{n:014d}")
                    for n in range(int(args.duration * 5000))]
            result = asyncio.run(run_clients(port, jobs, concurrency, args.duration))
            print(f"{concurrency:7d} {result.tps:10.1f} {result.percentile(50):8.2f} {result.percentile(95):8.2f} "
                  f"{result.percentile(99):8.2f} {result.errors:7d}")
    finally:
        terminate(server)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
