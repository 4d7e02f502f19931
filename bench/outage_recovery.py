"""Recovery from a Redis kill and from PostgreSQL dropping every connection,
on real processes: two Celery workers, beat, PostgreSQL, a private Redis.

1. approve -> ApprovalAccepted latency (p50/p99) over N approvals made one
   after another while other runs advance (simulated members take
   --apply-seconds per apply), before the outages;
2. Redis SIGKILLed while workers hold tasks, M approvals made while it is
   down, restarted on the same port (no persistence) after 5 s: time from
   the restart to the first run progress (a new Event row) and to the last
   of those approvals accepted;
3. PostgreSQL: every backend of the database terminated (what a restart
   does to sessions): time to the first run progress afterwards;
4. the latency of (1) again, after both outages.

    .venv/bin/python bench/outage_recovery.py [--approvals 8] [--during 4]
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.celery_engine import percentile  # noqa: E402
from tests.real_services import Hub, celery_hub, wait_for  # noqa: E402
from tests.test_celery_workers import fleet_yaml  # noqa: E402

OUTAGE_SECONDS = 5.0


def setup_django(hub: Hub) -> None:
    os.environ.update({k: v for k, v in hub.env.items() if k in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")})
    import django

    django.setup()


def accepted(names: list[str]) -> int:
    from rollouts import models as m

    requests = m.ClusterApprovalRequest.objects.filter(name__in=names)
    return sum(1 for r in requests if r.condition_status("ApprovalAccepted"))


def approve(name: str) -> None:
    from rollouts.api.kinds import KindRegistry
    from rollouts.services.approvals import approval_request_approve

    approval_request_approve(kind=KindRegistry().resolve("careq"), name=name, namespace="", actor="bench")


def latencies(names: list[str]) -> list[float]:
    """Approve one request at a time; ms until the engine accepted it."""
    out = []
    for name in names:
        start = time.perf_counter()
        approve(name)
        wait_for(lambda n=name: accepted([n]) == 1, timeout=60, what="ApprovalAccepted", step=0.005)
        out.append((time.perf_counter() - start) * 1000)
    return out


def last_event_id(hub: Hub) -> int:
    return hub.sql("SELECT coalesce(max(id), 0) FROM rollouts_event")[0][0]


def seconds_to_progress(hub: Hub, since: float, after_id: int) -> float:
    wait_for(lambda: last_event_id(hub) > after_id, timeout=120, what="run progress", step=0.05)
    return time.perf_counter() - since


def requests(hub: Hub, prefix: str, count: int) -> list[str]:
    query = "SELECT name FROM rollouts_clusterapprovalrequest WHERE name LIKE %s ORDER BY name"
    return wait_for(lambda: len(names := [n for (n,) in hub.sql(query, f"{prefix}-%")]) == count and names,
                    timeout=300, what=f"{count} approval requests {prefix}-*", step=0.2)


def redis_outage(hub: Hub, during: list[str]) -> dict:
    wait_for(lambda: hub.sql("SELECT 1")[0], timeout=5, what="database")
    hub.redis.kill()
    down = time.perf_counter()
    for name in during:
        approve(name)  # saved; the wake-up cannot be sent (one warning line)
    time.sleep(max(0.0, OUTAGE_SECONDS - (time.perf_counter() - down)))
    mark = last_event_id(hub)
    hub.redis.start()
    back = time.perf_counter()
    progress = seconds_to_progress(hub, back, mark)
    wait_for(lambda: accepted(during) == len(during), timeout=120, what="the outage's approvals", step=0.05)
    return {"progress": progress, "accepted_all": time.perf_counter() - back, "accepted": accepted(during)}


def postgres_outage(hub: Hub) -> float:
    from django.db import connections

    mark = last_event_id(hub)
    terminated = hub.sql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                         "WHERE datname = current_database() AND pid <> pg_backend_pid()")[0][0]
    connections.close_all()  # ours was among them
    print(f"terminated {terminated} PostgreSQL sessions")
    return seconds_to_progress(hub, time.perf_counter(), mark)


def report(name: str, values: list[float]) -> None:
    print(f"{name}: p50 {percentile(values, 50):.0f} ms, p99 {percentile(values, 99):.0f} ms (n={len(values)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--approvals", type=int, default=8, help="approvals timed before and after")
    parser.add_argument("--during", type=int, default=4, help="approvals made while Redis is down")
    parser.add_argument("--apply-seconds", default="0.3", help="FLEET_SIMULATED_APPLY_SECONDS")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, \
            celery_hub(Path(tmp), FLEET_SIMULATED_APPLY_SECONDS=args.apply_seconds) as hub:
        setup_django(hub)
        hub.worker("w1")
        hub.worker("w2")
        hub.beat()
        for prefix, count in (("before", args.approvals), ("during", args.during), ("after", args.approvals)):
            hub.manage("fleet", "apply", "-f", "-", stdin=fleet_yaml(count, prefix, gate=True))
        before = latencies(requests(hub, "before", args.approvals))
        report("approve -> ApprovalAccepted before the outages", before)
        during = requests(hub, "during", args.during)
        redis = redis_outage(hub, during)
        print(f"Redis restart -> first run progress: {redis['progress']:.1f} s")
        print(f"Redis restart -> all {len(during)} approvals made during the outage accepted: "
              f"{redis['accepted_all']:.1f} s ({redis['accepted']} of {len(during)})")
        print(f"PostgreSQL sessions terminated -> first run progress: {postgres_outage(hub):.2f} s")
        report("approve -> ApprovalAccepted after the outages", latencies(requests(hub, "after", args.approvals)))
        alive = [p.poll() is None for p in hub.processes]
        print(f"processes alive at the end: {sum(alive)} of {len(alive)} (2 workers, beat)")


if __name__ == "__main__":
    main()
