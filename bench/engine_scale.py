"""Engine scale benchmark: one run over 1,000 simulated members.

A 10-stage strategy (100 members per stage) at maxConcurrency 25%, apply
time 0, driven by the same engine_tick() the `fleet engine` loop runs, on a
fresh SQLite database (or DATABASE_URL if set). Reports wall time, engine
time per cluster update, SQL queries per run pass (reads and writes) and
peak memory.

    .venv/bin/python bench/engine_scale.py [--members 1000] [--stages 10]
"""

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def setup_django(db_path: str) -> None:
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{db_path}")
    os.environ["FLEET_SIMULATED_APPLY_SECONDS"] = "0"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fleetui.settings")
    os.environ.setdefault("DEBUG", "true")  # a local measurement: no production keys needed
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def fleet_manifests(members: int, stages: int) -> tuple[list[dict], list[dict]]:
    fleet = [
        {"apiVersion": "cluster.kubernetes-fleet.io/v1beta1", "kind": "MemberCluster",
         "metadata": {"name": f"member{i:04d}", "labels": {"stage": str(i % stages), "order": str(i)}}}
        for i in range(members)
    ]
    hub = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": "bench"}, "data": {"key": "v1"}},
        {"apiVersion": "placement.kubernetes-fleet.io/v1beta1", "kind": "ClusterResourcePlacement",
         "metadata": {"name": "bench"},
         "spec": {"resourceSelectors": [{"group": "", "version": "v1", "kind": "Namespace", "name": "bench"}],
                  "policy": {"placementType": "PickAll"}, "strategy": {"type": "External"}}},
        {"apiVersion": "placement.kubernetes-fleet.io/v1beta1", "kind": "ClusterStagedUpdateStrategy",
         "metadata": {"name": "bench"},
         "spec": {"stages": [{"name": f"stage{s}", "labelSelector": {"matchLabels": {"stage": str(s)}},
                              "sortingLabelKey": "order", "maxConcurrency": "25%"} for s in range(stages)]}},
    ]
    return fleet, hub


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--stages", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        setup_django(str(Path(tmp) / "bench.sqlite3"))
        report(*measure(args.members, args.stages), args.members, args.stages)


def measure(members: int, stages: int):
    from django.db import connection

    from rollouts import models as m
    from rollouts.engine import runner
    from rollouts.engine.loop import engine_tick
    from rollouts.services.objects import manifests_apply

    fleet, hub = fleet_manifests(members, stages)
    manifests_apply(docs=fleet, actor="bench")
    manifests_apply(docs=hub, actor="bench")
    passes = []
    original = runner._one_pass

    def counted(family, pk, *args):
        seen = []

        def count(execute, sql, params, many, context):
            seen.append(sql.lstrip()[:6].upper())
            return execute(sql, params, many, context)

        with connection.execute_wrapper(count):
            decision = original(family, pk, *args)
        passes.append((len(seen), seen.count("SELECT")))
        return decision

    runner._one_pass = counted
    run = {"apiVersion": "placement.kubernetes-fleet.io/v1beta1", "kind": "ClusterStagedUpdateRun",
           "metadata": {"name": "bench-run"},
           "spec": {"placementName": "bench", "resourceSnapshotIndex": "0", "stagedRolloutStrategyName": "bench"}}
    started = time.perf_counter()
    manifests_apply(docs=[run], actor="bench")
    ticks = 0
    while m.ClusterStagedUpdateRun.objects.get(name="bench-run").active:
        engine_tick()
        ticks += 1
        if ticks > 10_000:
            raise SystemExit("run did not finish")
    elapsed = time.perf_counter() - started
    runner._one_pass = original
    outcome = m.ClusterStagedUpdateRun.objects.get(name="bench-run").condition_status("Succeeded")
    return elapsed, ticks, passes, outcome


def report(elapsed, ticks, passes, outcome, members, stages) -> None:
    totals = [p[0] for p in passes]
    reads = [p[1] for p in passes]
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"members={members} stages={stages} maxConcurrency=25% outcome Succeeded={outcome}")
    print(f"whole run: {elapsed:.2f} s over {ticks} engine ticks, {len(passes)} run passes")
    print(f"engine time per cluster update: {elapsed / members * 1000:.2f} ms")
    print(f"queries per run pass: reads max {max(reads)} (median {statistics.median(reads):.0f}), "
          f"all max {max(totals)} (median {statistics.median(totals):.0f})")
    print(f"peak memory (max RSS): {peak_mib:.0f} MiB")


if __name__ == "__main__":
    main()
