"""KubeFleet's Performance and Scalability Report (Q1 2026), reproduced.

The report's fleet: 1,000 member clusters; 1,000 placements of 100 clusters
each; progressive rollouts of 3 stages (20 / 30 / 50 % of the clusters) at
maxConcurrency 50 %, no gates. Measured here, in one of two modes:

  embedded  `manage.py fleet engine` in a process of its own, on SQLite (WAL),
            the benchmark's writes waking it through its socket, as `make run`
  celery    two Celery workers and beat on PostgreSQL and a Redis of the
            benchmark's own, as the Procfile runs them

Each figure is printed beside KubeFleet's published one with the ratio:

  1. single rollout, run created -> Succeeded: p50 / p90 over --singles runs,
     made one after another on the idle fleet;
  2. --concurrent rollouts created at once: p50 / p90 of each run's time to
     Succeeded, and cluster updates per second over all of them;
  3. placement of 100 clusters (a RollingUpdate placement created ->
     every cluster Available): p50 / p90 over --placement-samples, on the
     idle fleet and while the concurrent rollouts run.

Simulated members apply instantly (FLEET_SIMULATED_APPLY_SECONDS=0), as the
report's members apply a ConfigMap.

    .venv/bin/python bench/kubefleet_report.py --mode embedded
    .venv/bin/python bench/kubefleet_report.py --mode celery
    .venv/bin/python bench/kubefleet_report.py --mode embedded --members 100 --placements 20 --concurrent 10  # smoke
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.real_services import Hub, RedisServer, postgres_database, process_env, wait_for  # noqa: E402

# KubeFleet's published figures (seconds).
KUBEFLEET = {"single p90": 96.0, "concurrent p50": 132.0, "concurrent p90": 135.0,
             "placement p90": 20.0, "placement p90 during rollouts": 30.0}
GROUP = "placement.kubernetes-fleet.io/v1beta1"
RINGS = (("ring0", 0.2), ("ring1", 0.3), ("ring2", 0.5))


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


# The fleet ---------------------------------------------------------------------------


def members_docs(members: int, per_placement: int) -> list[dict]:
    """Members in groups of `per_placement` (label `group`), each group split
    20 / 30 / 50 % into rings (label `ring`), ordered by `order`."""
    docs = []
    for i in range(members):
        position, cut, ring = i % per_placement, 0.0, RINGS[-1][0]
        for name, share in RINGS:
            cut += share
            if position < cut * per_placement:
                ring = name
                break
        docs.append({"apiVersion": "cluster.kubernetes-fleet.io/v1beta1", "kind": "MemberCluster",
                     "metadata": {"name": f"member{i:04d}",
                                  "labels": {"group": str(i // per_placement), "ring": ring, "order": str(i)}}})
    return docs


def strategy_doc() -> dict:
    stages = [{"name": name, "labelSelector": {"matchLabels": {"ring": name}}, "sortingLabelKey": "order",
               "maxConcurrency": "50%"} for name, _ in RINGS]
    return {"apiVersion": GROUP, "kind": "ClusterStagedUpdateStrategy", "metadata": {"name": "report"},
            "spec": {"stages": stages}}


def placement_docs(name: str, group: int, *, strategy: str = "External") -> list[dict]:
    """A namespace with a ConfigMap, and a placement of it on one group's clusters."""
    affinity = {"clusterAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"clusterSelectorTerms": [
        {"labelSelector": {"matchLabels": {"group": str(group)}}}]}}}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": name},
         "data": {"release": "1"}},
        {"apiVersion": GROUP, "kind": "ClusterResourcePlacement", "metadata": {"name": name},
         "spec": {"resourceSelectors": [{"group": "", "version": "v1", "kind": "Namespace", "name": name}],
                  "policy": {"placementType": "PickAll", "affinity": affinity},
                  "strategy": {"type": strategy}}},
    ]


def run_doc(name: str, placement: str) -> dict:
    return {"apiVersion": GROUP, "kind": "ClusterStagedUpdateRun", "metadata": {"name": name},
            "spec": {"placementName": placement, "resourceSnapshotIndex": "0", "stagedRolloutStrategyName": "report"}}


# The modes ---------------------------------------------------------------------------


class Embedded:
    """`fleet engine` in its own process on a SQLite file; this process writes."""

    def __init__(self, tmp: Path):
        self.env = process_env(DATABASE_URL=f"sqlite:///{tmp / 'report.sqlite3'}", FLEET_SIMULATED_APPLY_SECONDS="0",
                               FLEET_ENGINE_SOCKET=str(tmp / "engine.sock"), LOG_LEVEL="WARNING", REDIS_URL="")
        self.tmp, self.engine = tmp, None

    def start(self) -> None:
        log = open(self.tmp / "engine.log", "w")  # noqa: SIM115 (closed with the process)
        self.engine = subprocess.Popen([sys.executable, "manage.py", "fleet", "engine"], cwd=ROOT, env=self.env,
                                       stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(lambda: Path(self.env["FLEET_ENGINE_SOCKET"]).exists(), timeout=60, what="the engine's socket")

    def cpu_seconds(self) -> float | None:
        """CPU time the engine process has used (user + system): on a shared
        machine steadier than wall time, as other processes' load moves it less."""
        fields = (Path("/proc") / str(self.engine.pid) / "stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.engine and self.engine.poll() is None:
            self.engine.terminate()
            self.engine.wait(timeout=60)


class Celery:
    """Two workers and beat on PostgreSQL and a Redis of our own."""

    def __init__(self, tmp: Path):
        self.url, self.drop = postgres_database()
        self.redis = RedisServer(tmp).start()
        self.hub = Hub(self.url, self.redis, tmp)
        self.env = self.hub.env

    def start(self) -> None:
        self.hub.worker("report-1")
        self.hub.worker("report-2")
        self.hub.beat()
        time.sleep(3)  # let the workers connect

    def cpu_seconds(self) -> float | None:
        return None  # the workers' prefork children are not counted: not measured

    def stop(self) -> None:
        self.hub.stop_all()
        self.redis.kill()
        self.drop()


def django_setup(env: dict) -> None:
    for key in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "DEBUG", "SECRET_KEY", "FLEET_CREDENTIALS_KEY",
                "FLEET_SIMULATED_APPLY_SECONDS", "FLEET_ENGINE_SOCKET", "LOG_LEVEL"):
        if key in env:
            os.environ[key] = env[key]
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


# Measuring ---------------------------------------------------------------------------


def apply(docs: list[dict]) -> None:
    from rollouts.services.objects import manifests_apply

    manifests_apply(docs=docs, actor="bench")


def fleet_build(members: int, placements: int, per_placement: int) -> None:
    """Members, the strategy, then the placements 50 at a time (each write
    reconciles only the placements it holds)."""
    apply(members_docs(members, per_placement))
    apply([strategy_doc()])
    groups = max(1, members // per_placement)
    started = time.perf_counter()
    for first in range(0, placements, 50):
        apply([doc for j in range(first, min(first + 50, placements)) for doc in placement_docs(f"p{j:04d}", j % groups)])
    print(f"  built {placements} placements of {per_placement} clusters in {time.perf_counter() - started:.0f} s",
          flush=True)


def finished(names: list[str]) -> set[str]:
    """The runs among `names` that finished; a run that did not succeed stops the benchmark."""
    from rollouts import models as m

    done = set()
    for name, conditions in m.ClusterStagedUpdateRun.objects.filter(name__in=names, active=False).values_list(
            "name", "status__conditions"):
        succeeded = next((c for c in conditions or [] if c.get("type") == "Succeeded"), {})
        if succeeded.get("status") != "True":
            raise SystemExit(f"run {name} did not succeed: {succeeded}")
        done.add(name)
    return done


def runs_until_done(names: list[str], placements: list[str], timeout: float) -> dict[str, float]:
    """Create the runs at once (one write) and wait until each is finished;
    {run: seconds from the write to when this process saw it finished}."""
    started = {n: time.time() for n in names}
    apply([run_doc(n, p) for n, p in zip(names, placements, strict=True)])
    durations: dict[str, float] = {}
    deadline = time.time() + timeout
    while len(durations) < len(names):
        if time.time() > deadline:
            raise SystemExit(f"{len(names) - len(durations)} runs unfinished after {timeout:.0f} s")
        for name in finished([n for n in names if n not in durations]):
            durations[name] = time.time() - started[name]
        time.sleep(0.05)
    return durations


def placement_available(name: str, group: int, clusters: int, timeout: float) -> float:
    """Seconds from creating a RollingUpdate placement to every cluster Available."""
    from rollouts import models as m

    started = time.time()
    apply(placement_docs(name, group, strategy="RollingUpdate"))
    deadline = started + timeout
    while True:
        status = m.ClusterResourcePlacement.objects.filter(name=name).values_list("status", flat=True).first() or {}
        entries = status.get("placementStatuses") or []
        available = sum(any(c.get("type") == "Available" and c.get("status") == "True" for c in e.get("conditions") or [])
                        for e in entries)
        if available >= clusters:
            return time.time() - started
        if time.time() > deadline:
            raise SystemExit(f"placement {name}: {available} of {clusters} available after {timeout:.0f} s")
        time.sleep(0.05)


def line(label: str, ours: float, theirs_key: str | None) -> str:
    if theirs_key is None:
        return f"  {label}: {ours:.2f} s"
    theirs = KUBEFLEET[theirs_key]
    return f"  {label}: {ours:.2f} s   (KubeFleet {theirs:.0f} s: {theirs / ours:.0f}x faster)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["embedded", "celery"], required=True)
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--placements", type=int, default=1000)
    parser.add_argument("--per-placement", type=int, default=100, help="clusters per placement")
    parser.add_argument("--concurrent", type=int, default=100)
    parser.add_argument("--singles", type=int, default=10)
    parser.add_argument("--placement-samples", type=int, default=10)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    groups = max(1, args.members // args.per_placement)
    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        mode = (Embedded if args.mode == "embedded" else Celery)(Path(tmp))
        try:
            django_setup(mode.env)
            print(f"{args.mode}: {args.members} members, {args.placements} placements of {args.per_placement}, "
                  f"{args.concurrent} concurrent rollouts (3 stages 20/30/50 %, maxConcurrency 50 %)", flush=True)
            fleet_build(args.members, args.placements, args.per_placement)
            mode.start()
            singles = [runs_until_done([f"single-{i}"], [f"p{i:04d}"], 600)[f"single-{i}"]
                       for i in range(args.singles)]
            figures["single p50"], figures["single p90"] = statistics.median(singles), percentile(singles, 90)
            print(line("single rollout p50", figures["single p50"], None))
            print(line("single rollout p90", figures["single p90"], "single p90"), flush=True)

            idle = [placement_available(f"place-idle-{i}", i % groups, args.per_placement, 600)
                    for i in range(args.placement_samples)]
            figures["placement p90"] = percentile(idle, 90)
            print(line(f"placement of {args.per_placement} clusters p90", figures["placement p90"], "placement p90"), flush=True)

            names = [f"wave-{i}" for i in range(args.concurrent)]
            targets = [f"p{(args.singles + i) % args.placements:04d}" for i in range(args.concurrent)]
            busy: list[float] = []
            sampler = threading.Thread(target=lambda: busy.extend(
                placement_available(f"place-busy-{i}", i % groups, args.per_placement, 600)
                for i in range(args.placement_samples)))
            started, cpu = time.time(), mode.cpu_seconds()
            sampler.start()
            waves = runs_until_done(names, targets, 1800)
            wall = time.time() - started
            cpu = None if cpu is None else mode.cpu_seconds() - cpu
            sampler.join()
            from django.db import connections

            connections.close_all()  # the sampler thread's connection
            durations = list(waves.values())
            figures["concurrent p50"], figures["concurrent p90"] = statistics.median(durations), percentile(durations, 90)
            figures["cluster updates/s"] = args.concurrent * args.per_placement / wall
            figures["placement p90 during rollouts"] = percentile(busy, 90)
            print(line(f"{args.concurrent} concurrent rollouts p50", figures["concurrent p50"], "concurrent p50"))
            print(line(f"{args.concurrent} concurrent rollouts p90", figures["concurrent p90"], "concurrent p90"))
            print(f"  cluster updates per second: {figures['cluster updates/s']:.0f}")
            if cpu is not None:
                figures["engine cpu s"] = cpu
                print(f"  engine CPU during them: {cpu:.1f} s ({cpu / (args.concurrent * args.per_placement) * 1000:.2f} ms "
                      f"a cluster update, the busy placements' included)")
            print(line(f"placement of {args.per_placement} clusters p90 during the rollouts", figures["placement p90 during rollouts"],
                       "placement p90 during rollouts"), flush=True)
        finally:
            mode.stop()
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
