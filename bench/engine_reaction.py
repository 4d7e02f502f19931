"""How fast `fleet engine` (a separate process) reacts to a person.

1. approval → ApprovalAccepted: a release manager approves a gate in this
   process (as the CLI and web do); we time until the engine has written
   ApprovalAccepted. The engine's safety-net interval is set to 30 s so only
   the wake-up path can explain a fast reaction.
2. run created → Succeeded for a 3-cluster stage updated one at a time with
   apply time 0: how long the engine needs between one finished cluster and
   the next (KubeFleet polls every 15 s, so this takes 45 s there).

    .venv/bin/python bench/engine_reaction.py [--approvals 100]
"""

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FLEET = [
    {"apiVersion": "cluster.kubernetes-fleet.io/v1beta1", "kind": "MemberCluster",
     "metadata": {"name": f"member{i}", "labels": {"order": str(i)}}} for i in (1, 2, 3)
] + [
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "app"}},
    {"apiVersion": "placement.kubernetes-fleet.io/v1beta1", "kind": "ClusterResourcePlacement",
     "metadata": {"name": "app"}, "spec": {"resourceSelectors": [{"group": "", "version": "v1", "kind": "Namespace", "name": "app"}],
                                           "strategy": {"type": "External"}}},
    {"apiVersion": "placement.kubernetes-fleet.io/v1beta1", "kind": "ClusterStagedUpdateStrategy",
     "metadata": {"name": "gated"}, "spec": {"stages": [{"name": "all", "labelSelector": {}, "sortingLabelKey": "order",
                                                         "afterStageTasks": [{"type": "Approval"}]}]}},
    {"apiVersion": "placement.kubernetes-fleet.io/v1beta1", "kind": "ClusterStagedUpdateStrategy",
     "metadata": {"name": "open"}, "spec": {"stages": [{"name": "all", "labelSelector": {}, "sortingLabelKey": "order"}]}},
]


def run_manifest(name: str, strategy: str) -> dict:
    return {"apiVersion": "placement.kubernetes-fleet.io/v1beta1", "kind": "ClusterStagedUpdateRun",
            "metadata": {"name": name}, "spec": {"placementName": "app", "resourceSnapshotIndex": "0",
                                                 "stagedRolloutStrategyName": strategy}}


def wait_for(predicate, timeout: float = 30.0, step: float = 0.001):
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise SystemExit("timed out")


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--approvals", type=int, default=100)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.update(DATABASE_URL=f"sqlite:///{tmp}/hub.sqlite3", FLEET_ENGINE_SOCKET=f"{tmp}/engine.sock",
                          FLEET_SIMULATED_APPLY_SECONDS="0", DJANGO_SETTINGS_MODULE="fleetui.settings", DEBUG="true")
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        engine = subprocess.Popen([sys.executable, "manage.py", "fleet", "engine", "--interval", "30"], cwd=ROOT)
        try:
            time.sleep(2)
            measure(args.approvals, args.runs)
        finally:
            engine.send_signal(signal.SIGTERM)
            engine.wait(timeout=30)


def measure(approvals: int, runs: int) -> None:
    from rollouts import models as m
    from rollouts.api.kinds import KindRegistry
    from rollouts.services.approvals import approval_request_approve
    from rollouts.services.objects import manifests_apply

    manifests_apply(docs=FLEET, actor="bench")
    careq = KindRegistry().resolve("careq")
    latencies = []
    for i in range(approvals):
        manifests_apply(docs=[run_manifest(f"gated-{i}", "gated")], actor="bench")
        wait_for(lambda i=i: m.ClusterApprovalRequest.objects.filter(name=f"gated-{i}-all").exists())
        start = time.perf_counter()
        approval_request_approve(kind=careq, name=f"gated-{i}-all", namespace="", actor="bench")
        wait_for(lambda i=i: m.ClusterApprovalRequest.objects.get(name=f"gated-{i}-all").condition_status("ApprovalAccepted"))
        latencies.append((time.perf_counter() - start) * 1000)
    print(f"approval -> ApprovalAccepted over {approvals} approvals: p50 {statistics.median(latencies):.1f} ms, "
          f"p99 {percentile(latencies, 99):.1f} ms, max {max(latencies):.1f} ms")
    durations = []
    for i in range(runs):
        start = time.perf_counter()
        manifests_apply(docs=[run_manifest(f"open-{i}", "open")], actor="bench")
        wait_for(lambda i=i: m.ClusterStagedUpdateRun.objects.get(name=f"open-{i}").condition_status("Succeeded"))
        durations.append((time.perf_counter() - start) * 1000)
    print(f"3 clusters one at a time, run created -> Succeeded over {runs} runs: p50 {statistics.median(durations):.1f} ms, "
          f"max {max(durations):.1f} ms")


if __name__ == "__main__":
    main()
