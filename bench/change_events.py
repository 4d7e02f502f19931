"""What delivering change events costs a write: in memory after commit
(rollouts/changes.py, what Fleet UI does) against a transactional outbox.

Each iteration is one small write transaction shaped like an approval: an
UPDATE of one row and an INSERT of one audit row, then

  plain     nothing more (the floor)
  memory    + changes.publish() of two events, delivered after commit to
            three no-op subscribers (the real code path)
  outbox    + an INSERT of two outbox rows in the same transaction, then a
            delivery transaction that reads and deletes them (what a durable
            outbox needs at the least, before any relay or polling delay)

on SQLite (the embedded mode's file database, WAL) and PostgreSQL (a
fresh database, synchronous_commit on as in production).

    .venv/bin/python bench/change_events.py [--n 2000]
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PG_ADMIN = os.environ.get("FLEET_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args()
    pg_name = f"fleetui_bench_{uuid.uuid4().hex[:8]}"
    admin = _pg_admin()
    if admin:
        admin.execute(f'CREATE DATABASE "{pg_name}"')
    sqlite = Path(tempfile.mkdtemp()) / "bench.sqlite3"
    os.environ["DATABASE_URL"] = f"sqlite:///{sqlite}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fleetui.settings")
    import django

    django.setup()
    import dj_database_url
    from django.db import connections

    if admin:  # a second alias beside the SQLite default, with the same defaults Django filled in
        pg = dj_database_url.parse(PG_ADMIN.rsplit("/", 1)[0] + f"/{pg_name}")
        connections.databases["pg"] = {**connections.databases["default"], "OPTIONS": {}, **pg}
    try:
        for alias in ["default"] + (["pg"] if admin else []):
            _tables(alias)
            print(f"{'SQLite' if alias == 'default' else 'PostgreSQL'} ({args.n} write transactions each)")
            for mode in ("plain", "memory", "outbox"):
                times = _run(alias, mode, args.n)
                print(f"  {mode:7s} p50 {statistics.median(times) * 1e3:6.3f} ms   "
                      f"p99 {sorted(times)[int(len(times) * 0.99)] * 1e3:6.3f} ms")
    finally:
        connections.close_all()
        if admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


def _pg_admin():
    try:
        import psycopg

        return psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)
    except Exception as exc:  # the bench still runs on SQLite alone
        print(f"PostgreSQL not reachable ({exc}); SQLite only")
        return None


def _tables(alias: str) -> None:
    from django.db import connections

    with connections[alias].cursor() as cursor:
        for statement in (
            "CREATE TABLE IF NOT EXISTS bench_run (id integer PRIMARY KEY, status text)",
            "CREATE TABLE IF NOT EXISTS bench_event (id integer PRIMARY KEY, body text)" if alias == "default"
            else "CREATE TABLE IF NOT EXISTS bench_event (id serial PRIMARY KEY, body text)",
            "CREATE TABLE IF NOT EXISTS bench_outbox (id integer PRIMARY KEY, body text)" if alias == "default"
            else "CREATE TABLE IF NOT EXISTS bench_outbox (id serial PRIMARY KEY, body text)",
        ):
            cursor.execute(statement)
        cursor.execute("DELETE FROM bench_run")
        cursor.execute("INSERT INTO bench_run (id, status) VALUES (1, 'x')")


def _run(alias: str, mode: str, n: int) -> list[float]:
    from django.db import connections, transaction

    from rollouts import changes

    saved = list(changes._subscribers)
    changes._subscribers[:] = [lambda events: None] * 3
    times = []
    try:
        for i in range(n):
            start = time.perf_counter()
            with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
                cursor.execute("UPDATE bench_run SET status = %s WHERE id = 1", [str(i)])
                cursor.execute("INSERT INTO bench_event (body) VALUES (%s)", ["approved"])
                if mode == "memory":
                    changes.publish(changes.RunChanged("ClusterStagedUpdateRun", i, changes.Origin.PERSON),
                                    using=alias)
                    changes.publish(changes.AuditAppended(alias), using=alias)
                elif mode == "outbox":
                    cursor.execute("INSERT INTO bench_outbox (body) VALUES (%s), (%s)", ["run", "audit"])
            if mode == "outbox":
                with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
                    cursor.execute("SELECT id, body FROM bench_outbox ORDER BY id")
                    ids = [row[0] for row in cursor.fetchall()]
                    cursor.execute(f"DELETE FROM bench_outbox WHERE id IN ({','.join(map(str, ids))})")
            times.append(time.perf_counter() - start)
    finally:
        changes._subscribers[:] = saved
    return times


if __name__ == "__main__":
    main()
