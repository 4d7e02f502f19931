"""Dashboard scale benchmark: server time of the pages that must stay fast.

1. The run page of a 1,000-cluster run (10 stages of 100, maxConcurrency
   25%), driven by the engine until it waits at an approval after stage 5:
   600 clusters succeeded, 400 pending, so every state and task shows.
2. The audit log over 1,000,000 Event rows (bulk-inserted), unfiltered and
   with each filter, first page and a deep "older" page.

Each page is requested N times through Django's test Client (the whole
middleware and template stack, as a release manager, DEBUG off) on a fresh
SQLite database; p50 and p99 server time and the query count are printed.
Target: under 300 ms.

    .venv/bin/python bench/dashboard_scale.py [--members 1000] [--events 1000000] [--requests 30]
"""

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TARGET_MS = 300


def setup_django(db_path: str) -> None:
    os.environ["DATABASE_URL"] = f"sqlite:///{db_path}"
    os.environ["FLEET_SIMULATED_APPLY_SECONDS"] = "0"
    os.environ["DEBUG"] = "false"
    os.environ.setdefault("SECRET_KEY", "bench-only")
    os.environ.setdefault("FLEET_CREDENTIALS_KEY", "bench-only-credentials-key-never-used-in-production")
    os.environ["ALLOWED_HOSTS"] = "testserver"
    os.environ.setdefault("LOG_LEVEL", "WARNING")  # no access line per request in the table
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fleetui.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Pages render without `collectstatic`: static URLs unhashed (a dict lookup less).
    settings.STORAGES = {**settings.STORAGES,
                         "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
    call_command("migrate", verbosity=0)


def build_run(members: int, stages: int) -> float:
    """The fleet and a run waiting at the approval after the middle stage."""
    from rollouts import models as m
    from rollouts.engine.loop import engine_tick
    from rollouts.services.objects import manifests_apply

    sys.path.insert(0, str(ROOT / "bench"))
    from engine_scale import fleet_manifests

    started = time.perf_counter()
    fleet, hub = fleet_manifests(members, stages)
    hub[-1]["spec"]["stages"][stages // 2 - 1]["afterStageTasks"] = [{"type": "Approval"}]
    manifests_apply(docs=fleet, actor="bench")
    manifests_apply(docs=hub, actor="bench")
    manifests_apply(docs=[{"apiVersion": "placement.kubernetes-fleet.io/v1beta1", "kind": "ClusterStagedUpdateRun",
                           "metadata": {"name": "bench-run"},
                           "spec": {"placementName": "bench", "resourceSnapshotIndex": "0",
                                    "stagedRolloutStrategyName": "bench"}}], actor="bench")
    for _ in range(10_000):
        engine_tick()
        if m.ClusterApprovalRequest.objects.filter(name__startswith="bench-run-").exists():
            return time.perf_counter() - started
    raise SystemExit("the run never reached its approval")


def bulk_events(count: int) -> float:
    """`count` Event rows, as an engine and a few people would write them."""
    from django.db import connection, transaction

    from rollouts import models as m

    started = time.perf_counter()
    rng = random.Random(5)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    people = ["olivia", "rita", "sam", "ada"]
    table = m.Event._meta.db_table
    sql = (f'INSERT INTO "{table}" (time, actor, action, object_kind, object_namespace, object_name, run, '
           "reason, message, details) VALUES (%s, %s, %s, %s, '', %s, %s, %s, %s, %s)")
    with transaction.atomic(), connection.cursor() as cursor:
        for chunk in range(0, count, 50_000):
            rows = []
            for i in range(chunk, min(count, chunk + 50_000)):
                run = f"run-{i // 2000}"
                when = (base + timedelta(seconds=i * 3)).strftime("%Y-%m-%d %H:%M:%S")
                if i % 500 == 0:
                    rows.append((when, rng.choice(people), "approved", "ClusterApprovalRequest", f"{run}-canary",
                                 run, "ClusterApprovalRequestApproved", "lgtm",
                                 '{"comment": "lgtm", "client_address": "10.0.0.1", "via": "web"}'))
                else:
                    rows.append((when, "system:engine", "condition", "ClusterStagedUpdateRun", run, run,
                                 "ClusterUpdatingSucceeded", "cluster update completed successfully",
                                 f'{{"scope": "cluster", "cluster": "member{i % 1000:04d}"}}'))
            cursor.executemany(sql, rows)
    return time.perf_counter() - started


def measure(client, url: str, requests: int) -> tuple[float, float, float, int, int]:
    """(p50 ms, p95 ms, p99 ms, queries, bytes) over `requests` GETs after one warm-up."""
    from django.db import connection

    queries = []
    with connection.execute_wrapper(lambda execute, sql, *args: queries.append(sql) or execute(sql, *args)):
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        client.get(url)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    p95, p99 = (times[min(len(times) - 1, round(len(times) * q) - 1)] for q in (0.95, 0.99))
    return statistics.median(times), p95, p99, len(queries), len(response.content)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--stages", type=int, default=10)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        setup_django(str(Path(tmp) / "dashboard.sqlite3"))
        print(f"setup: {args.members}-cluster run driven to its gate in {build_run(args.members, args.stages):.1f} s; "
              f"{args.events:,} events inserted in {bulk_events(args.events):.1f} s")
        report(args)


def report(args) -> None:
    from django.test import Client

    from rollouts import models as m
    from rollouts.roles import RELEASE_MANAGERS, user_create

    client = Client()
    client.force_login(user_create(username="rita", role=RELEASE_MANAGERS)[0])
    deep = m.Event.objects.order_by("id").values_list("id", flat=True)[args.events // 2]
    pages = [
        ("run page, 1,000 clusters", "/runs/bench-run/"),
        ("overview", "/"),
        ("audit log, newest page", "/audit/"),
        ("audit log, older page (mid-table)", f"/audit/?before={deep}"),
        ("audit log, actor=rita", "/audit/?actor=rita"),
        ("audit log, action=approved", "/audit/?action=approved"),
        ("audit log, name only", "/audit/?name=run-250-canary"),
        ("audit log, kind+name", "/audit/?kind=ClusterStagedUpdateRun&name=run-400"),
        ("audit log, one-day window", "/audit/?since=2026-01-10T00:00&until=2026-01-11T00:00"),
        ("audit log, 30-day window", "/audit/?since=2026-01-02T00:00&until=2026-02-01T00:00"),
        ("audit log, 30-day window, older page", f"/audit/?since=2026-01-02T00:00&until=2026-02-01T00:00&before={deep}"),
        ("audit log, run filter", "/audit/?run=run-321"),
    ]
    print(f"{'page':38} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'queries':>8} {'KiB':>7}")
    worst = 0.0
    for label, url in pages:
        p50, p95, p99, queries, size = measure(client, url, args.requests)
        worst = max(worst, p99)
        print(f"{label:38} {p50:8.1f} {p95:8.1f} {p99:8.1f} {queries:8d} {size / 1024:7.0f}")
    print(f"worst p99 {worst:.1f} ms: {'within' if worst < TARGET_MS else 'OVER'} the {TARGET_MS} ms target")


if __name__ == "__main__":
    main()
