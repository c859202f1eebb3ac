"""The cost of the log that proves itself and of the event feed (issue 21); prints its figures.

1. leaves: the leaf pipeline alone (RFC 8785 leaf, leaf hash, the tree's frontier) over
   --leaves synthetic stored events (copies of real events' stored states with fresh ids and
   positions: building a store of a million real events is too slow on this machine).
2. tree: the `audit_tree` projection built from zero on an embedded SQLite store of
   --store-events events (real shipment and ticket events recorded through the application,
   then their stored rows copied under fresh ids in bulk), nodes written to its tables.
3. proofs: --proofs random inclusion and consistency proofs answered from that tree.
4. feed: the whole store read by one consumer through the feed, pages of 1000, CloudEvents
   JSON made as the route makes it.
5. latency: a consumer long-polling the feed, and an event saved: time until it has it, on
   SQLite (the saving process's own wake-up) and on PostgreSQL (a writer with its own
   connections, so the consumer hears of it by LISTEN/NOTIFY).
6. live: the tree's CPU per event in batches of 500 on PostgreSQL, as beside a running service.

    .venv/bin/python benchmarks/audit_log.py                          # 1,000,000 leaves, 200,000-event store
    .venv/bin/python benchmarks/audit_log.py --store-events 1000000   # the projection over a million

3b. proofs at --proof-leaves (a million): a tree written in bulk into the projection's tables.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import date
from pathlib import Path

from eventsourcing.persistence import Notification

from smoke import parse_args  # benchmarks/smoke.py: scripts run from this folder

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

ADMIN_URL = os.environ.get("LIFECYCLE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")



def settings_for(url: str, var: Path, **extra):  # noqa: ANN003, ANN201
    from lifecycle.settings import Settings

    return Settings(database_url=url, var_dir=var, secret_key="bench", run_projections=False, **extra)


def seed_events(app, count: int) -> None:  # noqa: ANN001
    for n in range(count):
        app.shipments.record_shipment(f"BENCH{n:07d}", "12345-01", "AT-x510-28GTX", date(2026, 11, 2))
        app.shipments.record_ticket_sale(f"{40000000 + n}", "AB12CD", "12345-99", "デリバリースタンダード", 1, "new",
                                         date(2026, 11, 10))


def grow_sqlite(app, total: int) -> None:  # noqa: ANN001
    """Copies the stored rows under fresh ids until the log holds `total` events."""
    table = app.recorder.events_table_name
    with app.recorder.datastore.transaction(commit=False) as cursor:
        cursor.execute(f"SELECT originator_version, topic, state FROM {table} ORDER BY rowid")
        templates = [(r[0], r[1], bytes(r[2])) for r in cursor.fetchall()]
    have = app.recorder.max_notification_id() or 0
    while have < total:
        rows = [(uuid.uuid4().hex, *templates[i % len(templates)]) for i in range(min(50_000, total - have))]
        with app.recorder.datastore.transaction(commit=True) as cursor:
            cursor.executemany(f"INSERT INTO {table} (originator_id, originator_version, topic, state) "
                               "VALUES (?, ?, ?, ?)", rows)
        have += len(rows)


def bench_leaves(app, count: int) -> None:  # noqa: ANN001
    from lifecycle import merkle
    from lifecycle.audit import leaf_of

    templates = app.recorder.select_notifications(start=1, limit=100)
    events = [Notification(id=i + 1,
                           originator_id=uuid.uuid4(),
                           originator_version=t.originator_version,
                           topic=t.topic,
                           state=t.state)
              for i, t in zip(range(count), (templates[i % len(templates)] for i in range(count)))]
    started, cpu = time.perf_counter(), time.process_time()
    frontier = merkle.Frontier()
    for event in events:
        frontier.append(merkle.leaf_hash(leaf_of(event)))
    frontier.root()
    took, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(f"leaves: {count:,} synthetic stored events (avg state {statistics.mean(len(t.state) for t in templates):.0f} B)"
          f" in {took:.2f} s = {count / took:,.0f} leaves/s; {count / cpu:,.0f} leaves per CPU second"
          f" (leaf, hash, frontier; no store; load average {os.getloadavg()[0]:.1f})")


def bench_tree(settings, app):  # noqa: ANN001, ANN201
    from lifecycle.bootstrap import build_audit_log
    from lifecycle.projections.audit_tree import AuditTree
    from lifecycle.projections.read_models import ReadModels

    read_models = ReadModels(app, projections=[AuditTree], batch_size=5000)
    head = app.recorder.max_notification_id()
    started, cpu = time.perf_counter(), time.process_time()
    read_models.runners["audit_tree"].catch_up()
    took, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(f"tree: audit_tree built from zero over {head:,} events in {took:.1f} s = {head / took:,.0f} leaves/s; "
          f"{head / cpu:,.0f} per CPU second (SQLite, nodes written; load average {os.getloadavg()[0]:.1f})")
    return build_audit_log(settings, app, read_models)


def bench_proofs(audit, count: int) -> None:  # noqa: ANN001
    from lifecycle import merkle

    size = audit.tree.size()
    root = audit.tree.root(size)
    rng = random.Random(21)
    inclusion, consistency = [], []
    for _ in range(count):
        index = rng.randrange(size)
        started = time.perf_counter()
        proof = audit.inclusion(index, size)
        inclusion.append(time.perf_counter() - started)
        merkle.verify_inclusion(index, size, proof.leaf_hash, proof.hashes, root)
        first = rng.randrange(1, size + 1)
        started = time.perf_counter()
        audit.consistency(first, size)
        consistency.append(time.perf_counter() - started)

    def ms(values: list[float], q: float) -> str:
        return f"{sorted(values)[int(q * (len(values) - 1))] * 1000:.2f} ms"

    print(f"proofs at {size:,} leaves: inclusion p50 {ms(inclusion, 0.5)}, p99 {ms(inclusion, 0.99)}; "
          f"consistency p50 {ms(consistency, 0.5)}, p99 {ms(consistency, 0.99)} ({count} each, all verified)")


def bench_proofs_at(count: int, proofs: int, var: Path) -> None:
    """Proofs from a tree of `count` leaves written straight into the audit tree's tables (the
    projection's rows, computed here in bulk): the answer's cost at a size the store cannot reach
    here in a bounded run."""
    from lifecycle import merkle
    from lifecycle.bootstrap import build_application, build_audit_log, build_read_models
    from lifecycle.projections.audit_tree import node_key

    settings = settings_for(f"sqlite:///{var / 'million.sqlite3'}", var)
    app = build_application(settings)
    try:
        audit = build_audit_log(settings, app, build_read_models(settings, app))
        view = audit.runner.view
        started = time.perf_counter()
        level = [merkle.leaf_hash(n.to_bytes(8, "big")) for n in range(count)]
        leaves = [(i, i + 1, h.hex()) for i, h in enumerate(level)]
        nodes, depth = [], 0
        while len(level) > 1:
            depth += 1
            level = [merkle.node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            nodes += [(node_key(depth, i), h.hex()) for i, h in enumerate(level)]
        with app.recorder.datastore.transaction(commit=True) as cursor:
            cursor.executemany(f"INSERT INTO {view.table('leaves')} VALUES (?, ?, ?)", leaves)
            cursor.executemany(f"INSERT INTO {view.table('nodes')} VALUES (?, ?)", nodes)
            cursor.execute(f"INSERT INTO {view.table('size')} VALUES ('tree', ?)", (count,))
        print(f"proofs: a tree of {count:,} leaves written in {time.perf_counter() - started:.1f} s "
              f"({len(leaves) + len(nodes):,} rows)")
        bench_proofs(audit, proofs)
    finally:
        app.close()


def bench_feed(settings, app, limit_events: int) -> None:  # noqa: ANN001
    from lifecycle.bootstrap import build_feed
    from lifecycle.feed import json_batch

    feed = build_feed(settings, app)
    after, count, size = 0, 0, 0
    started, cpu = time.perf_counter(), time.process_time()
    while count < limit_events:
        page = feed.read(after, 1000)
        if not page.events:
            break
        size += len(json_batch(page.events))
        count += len(page.events)
        after = page.next
    took, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(f"feed: {count:,} events to one consumer in pages of 1000 in {took:.2f} s = {count / took:,.0f} events/s; "
          f"{count / cpu:,.0f} per CPU second ({size / count:.0f} B of CloudEvents JSON each; "
          f"load average {os.getloadavg()[0]:.1f})")


def database_cpu_seconds(url: str) -> float:
    """The CPU time of every PostgreSQL backend connected to this benchmark's database (its own
    database: no one else's work), from the kernel's nanosecond run-time counters."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        pids = [r[0] for r in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")]
    total = 0
    for pid in pids:
        try:
            total += int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):  # gone meanwhile, or not on this host
            pass
    return total / 1e9


def bench_live(settings, events: int) -> None:  # noqa: ANN001
    """The tree's own cost beside a live service: batches of 500 events (about a second of
    registrations at full speed here), on PostgreSQL; the CPU per event of this process (its
    reads, leaves, nodes and writes) and of the database's backends (on this host)."""
    from lifecycle.bootstrap import build_application
    from lifecycle.projections.audit_tree import AuditTree
    from lifecycle.projections.read_models import ReadModels

    app = build_application(settings)
    try:
        seed_events(app, events // 2)
        runner = ReadModels(app, projections=[AuditTree], batch_size=500).runners["audit_tree"]
        runner.head()  # its connections open before the count starts
        done, cpu, db = 0, time.process_time(), database_cpu_seconds(settings.database_url)
        while moved := runner.run_once():
            done += moved
        cpu, db = time.process_time() - cpu, database_cpu_seconds(settings.database_url) - db
        print(f"tree beside a live service: {done:,} events in batches of 500 on PostgreSQL, per event "
              f"{cpu / done * 1e6:.1f} µs of this process's CPU and {db / done * 1e6:.1f} µs of the database's "
              f"(load average {os.getloadavg()[0]:.1f})")
    finally:
        app.close()


def bench_latency(label: str, feed_app, writer_app, settings, rounds: int) -> None:  # noqa: ANN001
    from lifecycle.bootstrap import build_feed

    feed = build_feed(settings, feed_app)
    feed.start()
    delays = []
    try:
        for n in range(rounds):
            head = feed_app.recorder.max_notification_id() or 0
            got: dict[str, float] = {}

            def consume() -> None:
                page = feed.read(head, 10, wait=5)  # noqa: B023
                if page.events:
                    got["at"] = time.perf_counter()  # noqa: B023

            consumer = threading.Thread(target=consume)
            consumer.start()
            time.sleep(0.2)  # the consumer is waiting
            saved = time.perf_counter()
            writer_app.shipments.record_shipment(f"LAT{uuid.uuid4().hex[:10]}", "12345-01", "AT-x510", date(2026, 11, 2))
            consumer.join()
            delays.append((got["at"] - saved) * 1000 if "at" in got else float("inf"))
    finally:
        feed.stop()
    print(f"latency ({label}): a new event reached a waiting consumer in median {statistics.median(delays):.1f} ms, "
          f"max {max(delays):.1f} ms ({rounds} events; from the save call, its commit included)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leaves", type=int, default=1_000_000)
    parser.add_argument("--store-events", type=int, default=200_000)
    parser.add_argument("--proofs", type=int, default=1000)
    parser.add_argument("--proof-leaves", type=int, default=1_000_000,
                        help="the size of the tree written in bulk for proofs at that size")
    parser.add_argument("--feed-events", type=int, default=200_000)
    parser.add_argument("--latency-rounds", type=int, default=20)
    parser.add_argument("--live-events", type=int, default=4000, help="events for the tree's cost beside a live service")
    parser.add_argument("--skip-postgres", action="store_true")
    args = parse_args(parser, leaves=2000, store_events=2000, proofs=20, proof_leaves=3000, feed_events=2000,
                      latency_rounds=3, live_events=40)

    from lifecycle.bootstrap import build_application

    with tempfile.TemporaryDirectory(prefix="audit-bench-") as work:
        var = Path(work)
        settings = settings_for(f"sqlite:///{var / 'events.sqlite3'}", var)
        app = build_application(settings)
        try:
            seed_events(app, 250)
            bench_leaves(app, args.leaves)
            grow_sqlite(app, args.store_events)
            audit = bench_tree(settings, app)
            bench_proofs(audit, args.proofs)
            bench_feed(settings, app, args.feed_events)
            bench_latency("SQLite, saved in the consumer's process", app, app, settings, args.latency_rounds)
        finally:
            app.close()
        bench_proofs_at(args.proof_leaves, args.proofs, var)
        if not args.skip_postgres:
            import psycopg
            from psycopg import sql

            name = f"audit_bench_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            try:
                pg = settings_for(f"{ADMIN_URL.rsplit('/', 1)[0]}/{name}", var)
                feed_app, writer_app = build_application(pg), build_application(pg)
                try:
                    bench_latency("PostgreSQL, saved by another application: LISTEN/NOTIFY", feed_app, writer_app, pg,
                                  args.latency_rounds)
                finally:
                    feed_app.close()
                    writer_app.close()
                bench_live(pg, args.live_events)
            finally:
                with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
                    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


if __name__ == "__main__":
    main()
