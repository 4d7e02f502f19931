"""What /healthz and /readyz cost: a Daphne process in production mode
(PostgreSQL, a Redis of its own, fresh heartbeats), probed N times one after
another over one keep-alive connection, as a load balancer polling every
second would, only faster.

Reports p50/p99 latency per probe, Daphne's CPU time per probe (from
/proc), and per probe the PostgreSQL transactions (an autocommit query is
one) and new sessions (connections) from pg_stat_database.

    .venv/bin/python bench/health_probes.py [--probes 1000]
"""

import argparse
import http.client
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.real_services import Hub, RedisServer, free_port, postgres_database  # noqa: E402

HEARTBEATS = """
from rollouts.services.health import heartbeat_record
for source in ("beat", "worker"):
    heartbeat_record(source=source)
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def probe(port: int, path: str, count: int, pid: int) -> tuple[list[float], float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    latencies, cpu_before = [], cpu_seconds(pid)
    for _ in range(count):
        start = time.perf_counter()
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        assert response.status == 200, (path, response.status)
        latencies.append((time.perf_counter() - start) * 1000)
    conn.close()
    return latencies, (cpu_seconds(pid) - cpu_before) / count * 1000


def counters(hub: Hub, database: str) -> tuple[int, int]:
    """PostgreSQL's (transactions, sessions) of the database so far."""
    return hub.sql("SELECT xact_commit + xact_rollback, sessions FROM pg_stat_database WHERE datname = %s",
                   database)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--probes", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url, drop = postgres_database()
        redis = RedisServer(Path(tmp)).start()
        hub = Hub(url, redis, Path(tmp))
        hub.env.update({"FLEET_HEARTBEAT_STALE_SECONDS": "3600", "LOG_LEVEL": "WARNING"})
        try:
            hub.manage("migrate", "-v0")
            hub.shell(HEARTBEATS)
            port = free_port()
            daphne = hub.daphne(port, "-v", "0")
            probe(port, "/readyz", 50, daphne.pid)  # warm up: imports, connections
            database = url.rsplit("/", 1)[1]
            for path in ("/healthz", "/readyz"):
                before = counters(hub, database)
                latencies, cpu_ms = probe(port, path, args.probes, daphne.pid)
                after = counters(hub, database)
                # -1: the counting query's own transaction and session
                xacts, sessions = ((a - b - 1) / args.probes for a, b in zip(after, before, strict=True))
                cuts = statistics.quantiles(latencies, n=100)
                print(f"{path}: p50 {cuts[49]:.2f} ms, p99 {cuts[98]:.2f} ms, daphne CPU {cpu_ms:.2f} ms/probe, "
                      f"PostgreSQL transactions/probe {xacts:.2f}, new sessions/probe {sessions:.2f}")
        finally:
            hub.stop_all()
            redis.kill()
            drop()


if __name__ == "__main__":
    main()
