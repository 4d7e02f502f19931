"""What the hub-wide resourceVersion costs a write, and a watcher's poll.

Each iteration is one write transaction shaped like `store.save`: a
compare-and-set UPDATE of one object row (spec JSON, resource_version), then
COMMIT, with the new resourceVersion taken

  per-row   as before: old + 1, the row's own counter (the floor)
  hub       from the hub's counter, as rollouts/models/revisions.py does:
            SQLite's counter row (upsert … RETURNING), PostgreSQL's
            rollouts_next_rv() (sequence + once-per-transaction horizon lock)
  locked    PostgreSQL only, the design not taken: a one-row counter
            UPDATE … RETURNING whose row lock is held until commit

and the watcher's idle poll: the horizon query (revisions.horizon); then
four concurrent durable writers on PostgreSQL, hub counter against locked.

SQLite: a WAL file database; PostgreSQL: a fresh database; each durable
(fsync at commit, as in production) and "nosync" (no wait for the disk, which
shows the counter's own CPU and round-trip cost). Raw SQL (no ORM), so the
difference is the counter's.

    .venv/bin/python bench/hub_revision.py [--n 500]
"""

import argparse
import importlib
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PG_ADMIN = os.environ.get("FLEET_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
SPEC = json.dumps({"stages": [{"name": "staging", "labelSelector": {"matchLabels": {"env": "staging"}}}]})


def _horizon_sql() -> str:
    """The horizon query as the app runs it (needs Django's app registry)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fleetui.settings")
    os.environ.setdefault("DEBUG", "true")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{Path(tempfile.mkdtemp()) / 'unused.sqlite3'}")
    import django  # noqa: PLC0415 - after the environment above

    django.setup()
    return importlib.import_module("rollouts.models.revisions").PG_HORIZON


PG_HORIZON = _horizon_sql()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=500)
    n = parser.parse_args().n
    print(f"one compare-and-set write transaction, {n} each; p50 / p90 in ms")
    for durable in (True, False):
        _report(f"SQLite{'' if durable else ' nosync'}", _sqlite(n, durable))
    name = f"fleetui_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
            for durable in (True, False):
                _report(f"PostgreSQL{'' if durable else ' nosync'}", _postgres(url, n, durable))
            rates = _concurrent(url, n // 2)
            print("  PostgreSQL, 4 concurrent durable writers: "
                  + ", ".join(f"{mode} {rate:.0f} writes/s" for mode, rate in rates.items()))
        finally:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def _report(database: str, results: dict) -> None:
    for mode, times in results.items():
        ordered = sorted(times)
        print(f"  {database:13} {mode:8} p50 {statistics.median(ordered) * 1000:7.3f}"
              f"  p90 {ordered[int(len(ordered) * 0.9)] * 1000:7.3f}")


def _timed(n: int, step) -> list[float]:
    times = []
    for i in range(n):
        start = time.perf_counter()
        step(i)
        times.append(time.perf_counter() - start)
    return times


def _sqlite(n: int, durable: bool) -> dict:
    path = Path(tempfile.mkdtemp()) / "bench.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={'FULL' if durable else 'OFF'}")
    db.execute("CREATE TABLE obj (id INTEGER PRIMARY KEY, rv BIGINT, spec TEXT)")
    db.execute("CREATE INDEX obj_rv ON obj (rv)")
    db.execute("CREATE TABLE hubrevision (id INTEGER PRIMARY KEY, value BIGINT, compacted BIGINT)")
    db.execute("INSERT INTO obj VALUES (1, 1, ?)", [SPEC])
    state = {"rv": 1}

    def write(next_rv):
        db.execute("BEGIN IMMEDIATE")
        new = next_rv()
        assert db.execute("UPDATE obj SET spec = ?, rv = ? WHERE id = 1 AND rv = ?", [SPEC, new, state["rv"]]).rowcount == 1
        db.execute("COMMIT")
        state["rv"] = new

    def hub():
        return db.execute("INSERT INTO hubrevision VALUES (1, 1, 0) ON CONFLICT (id) DO UPDATE"
                          " SET value = hubrevision.value + excluded.value RETURNING value").fetchone()[0] + 1000000

    results = {"per-row": _timed(n, lambda i: write(lambda: state["rv"] + 1)),
               "hub": _timed(n, lambda i: write(hub)),
               "horizon": _timed(n, lambda i: db.execute("SELECT value FROM hubrevision WHERE id = 1").fetchone())}
    db.close()
    return results


def _postgres(url: str, n: int, durable: bool) -> dict:
    migration = importlib.import_module("rollouts.migrations.0018_hub_resource_version")
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(f"SET synchronous_commit = {'on' if durable else 'off'}")
        db.execute("DROP TABLE IF EXISTS obj, counter")
        db.execute("CREATE TABLE obj (id int PRIMARY KEY, rv bigint, spec jsonb)")
        db.execute("CREATE INDEX obj_rv ON obj (rv)")
        db.execute("CREATE TABLE counter (id int PRIMARY KEY, value bigint)")
        db.execute("INSERT INTO counter VALUES (1, 0)")
        db.execute("INSERT INTO obj VALUES (1, 1, %s)", [SPEC])
        db.execute(migration.PG_CREATE)
        db.execute("SELECT setval('rollouts_hub_rv', 1, true)")
        state = {"rv": 1}

        def write(next_rv):
            with db.transaction():
                new = next_rv()
                cur = db.execute("UPDATE obj SET spec = %s, rv = %s WHERE id = 1 AND rv = %s", [SPEC, new, state["rv"]])
                assert cur.rowcount == 1
            state["rv"] = new

        return {
            "per-row": _timed(n, lambda i: write(lambda: state["rv"] + 1)),
            "hub": _timed(n, lambda i: write(lambda: db.execute("SELECT rollouts_next_rv()").fetchone()[0] + 10**6)),
            "locked": _timed(n, lambda i: write(lambda: db.execute(
                "UPDATE counter SET value = value + 1 WHERE id = 1 RETURNING value").fetchone()[0] + 2 * 10**6)),
            "horizon": _timed(n, lambda i: db.execute(PG_HORIZON).fetchone()),
        }


def _concurrent(url: str, n: int, threads: int = 4) -> dict:
    """Writes per second of `threads` writers, each on its own row, durable:
    the hub counter against the locked counter row (which serialises every
    commit of the hub behind the one before)."""
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("DROP TABLE IF EXISTS obj, counter")
        db.execute("CREATE TABLE obj (id int PRIMARY KEY, rv bigint, spec jsonb)")
        db.execute("CREATE TABLE counter (id int PRIMARY KEY, value bigint)")
        db.execute("INSERT INTO counter VALUES (1, 0)")
        db.execute("INSERT INTO obj SELECT g, 0, %s FROM generate_series(1, %s) g", [SPEC, threads])
    draws = {"hub": "SELECT rollouts_next_rv()", "locked": "UPDATE counter SET value = value + 1 WHERE id = 1 RETURNING value"}
    found = {}
    for mode, draw in draws.items():
        def writer(row: int, draw=draw):
            with psycopg.connect(url, autocommit=True) as db:
                for _ in range(n):
                    with db.transaction():
                        new = db.execute(draw).fetchone()[0]
                        db.execute("UPDATE obj SET spec = %s, rv = %s WHERE id = %s", [SPEC, new, row])
        workers = [threading.Thread(target=writer, args=(row,)) for row in range(1, threads + 1)]
        start = time.perf_counter()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        found[mode] = threads * n / (time.perf_counter() - start)
    return found


if __name__ == "__main__":
    main()
