"""The engine on Celery workers (Redis broker, PostgreSQL), on loopback.

1. approval -> ApprovalAccepted latency through Celery, p50/p99 over N
   approvals made one after another (each enqueues the run's advance after
   its commit; a worker consumes it and writes ApprovalAccepted).
2. cluster transitions per second with 1, 2 and 4 workers (each worker one
   process): R runs of 30 clusters each, from apply to the last Succeeded.

    .venv/bin/python bench/celery_engine.py [--approvals 100] [--runs 20]
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.real_services import Hub, RedisServer, postgres_database, wait_for  # noqa: E402
from tests.test_celery_workers import MEMBERS, fleet_yaml, unfinished_runs  # noqa: E402


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def approval_latency(hub: Hub, approvals: int) -> list[float]:
    os.environ.update({k: v for k, v in hub.env.items() if k in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE",
                                                                   "DEBUG", "SECRET_KEY", "FLEET_CREDENTIALS_KEY")})
    import django

    django.setup()
    from rollouts import models as m
    from rollouts.api.kinds import KindRegistry
    from rollouts.services.approvals import approval_request_approve

    hub.manage("fleet", "apply", "-f", "-", stdin=fleet_yaml(approvals, "lat", gate=True))
    wait_for(lambda: m.ClusterApprovalRequest.objects.filter(name__startswith="lat-").count() == approvals,
             timeout=600, what="approval requests", step=0.5)
    kind, latencies = KindRegistry().resolve("careq"), []
    for request in m.ClusterApprovalRequest.objects.filter(name__startswith="lat-").order_by("name"):
        start = time.perf_counter()
        approval_request_approve(kind=kind, name=request.name, namespace="", actor="bench")
        wait_for(lambda r=request: m.ClusterApprovalRequest.objects.get(pk=r.pk).condition_status("ApprovalAccepted"),
                 timeout=30, what="ApprovalAccepted", step=0.002)
        latencies.append((time.perf_counter() - start) * 1000)
    return latencies


def throughput(hub: Hub, workers: int, runs: int) -> float:
    procs = [hub.worker(f"tp{workers}-{i}", concurrency=1) for i in range(workers)]
    time.sleep(3)  # let the workers connect
    prefix = f"tp{workers}"
    start = time.perf_counter()
    hub.manage("fleet", "apply", "-f", "-", stdin=fleet_yaml(runs, prefix))
    wait_for(lambda: unfinished_runs(hub, prefix) == 0, timeout=900, what="runs to finish", step=0.1)
    elapsed = time.perf_counter() - start
    for proc in procs:
        hub.kill(proc)
    return runs * MEMBERS / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--approvals", type=int, default=100)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--only", choices=["latency", "throughput"], default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url, drop = postgres_database()
        redis = RedisServer(Path(tmp)).start()
        hub = Hub(url, redis, Path(tmp))
        try:
            hub.manage("migrate", "-v0")
            for workers in (1, 2, 4) if args.only != "latency" else ():
                rate = throughput(hub, workers, args.runs)
                print(f"{workers} worker(s): {rate:.1f} cluster transitions/s ({args.runs} runs x {MEMBERS} clusters)")
            if args.only == "throughput":
                return
            hub.worker("lat-a", concurrency=1)
            hub.worker("lat-b", concurrency=1)
            latencies = approval_latency(hub, args.approvals)
            print(f"approval -> ApprovalAccepted through Celery over {len(latencies)} approvals: "
                  f"p50 {statistics.median(latencies):.1f} ms, p99 {percentile(latencies, 99):.1f} ms, "
                  f"max {max(latencies):.1f} ms")
        finally:
            hub.stop_all()
            redis.kill()
            drop()


if __name__ == "__main__":
    main()
