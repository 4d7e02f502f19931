"""Hub mirror benchmark: a KubeFleet hub of many members and runs, mirrored
through the official client over HTTP from tests/fake_kube.py's API server.

Measures, on a fresh SQLite database (or DATABASE_URL if set):

    first sync   list every kind and mirror it (one session of ~0 s watch)
    watch lag    a run's status changes on the hub -> the mirrored row has it
                 (a session watching in a thread; this thread changes one run
                 at a time on the hub and polls the database)
    approve      approve_on_hub round trip: read the request, merge-patch its
                 status on the hub, record our Event

    .venv/bin/python bench/hub_mirror.py [--members 1000] [--runs 50] [--changes 200]
"""

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def setup_django(db_path: str) -> None:
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{db_path}")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fleetui.settings")
    os.environ.setdefault("DEBUG", "true")  # a local measurement: no production keys needed
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def hub_fill(fake, members: int, runs: int) -> None:
    """`members` member clusters in 10 stages; `runs` runs of one placement,
    each with a status listing every cluster, and an approval request each."""
    from tests.fake_kube import fleet_object

    for i in range(members):
        fake.put(fleet_object("MemberCluster", f"member{i:04d}", labels={"stage": str(i % 10), "order": str(i)}))
    fake.put(fleet_object("ClusterResourcePlacement", "bench", spec={
        "resourceSelectors": [{"group": "", "kind": "Namespace", "version": "v1", "name": "bench"}],
        "policy": {"placementType": "PickAll"}, "strategy": {"type": "External"}}))
    fake.put(fleet_object("ClusterResourceSnapshot", "bench-0-snapshot", labels={
        "kubernetes-fleet.io/parent-CRP": "bench", "kubernetes-fleet.io/resource-index": "0",
        "kubernetes-fleet.io/is-latest-snapshot": "true"}, spec={"selectedResources": []}))
    fake.put(fleet_object("ClusterStagedUpdateStrategy", "bench", spec={"stages": [
        {"name": f"stage{s}", "labelSelector": {"matchLabels": {"stage": str(s)}}, "sortingLabelKey": "order",
         "afterStageTasks": [{"type": "Approval"}]} for s in range(10)]}))
    for r in range(runs):
        fake.put(run_object(r, members, generation=0))
        fake.put(fleet_object("ClusterApprovalRequest", f"run{r:03d}-stage0", labels={
            "kubernetes-fleet.io/targetUpdateRun": f"run{r:03d}",
            "kubernetes-fleet.io/targetUpdatingStage": "stage0"},
            spec={"parentStageRollout": f"run{r:03d}", "targetStage": "stage0"}))


def run_object(r: int, members: int, *, generation: int) -> dict:
    from tests.fake_kube import condition, fleet_object

    stages = [{"stageName": f"stage{s}", "clusters": [
        {"clusterName": f"member{i:04d}", "conditions": [condition("Started", "True", "ClusterUpdatingStarted")]}
        for i in range(s, members, 10)]} for s in range(10)]
    status = {"conditions": [condition("Initialized", "True", "UpdateRunInitializedSuccessfully"),
                             condition("Progressing", "True", "UpdateRunStarted", message=f"pass {generation}")],
              "stagesStatus": stages}
    return fleet_object("ClusterStagedUpdateRun", f"run{r:03d}", status=status, spec={
        "placementName": "bench", "resourceSnapshotIndex": "0", "stagedRolloutStrategyName": "bench",
        "state": "Run"})


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--changes", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        setup_django(str(Path(tmp) / "bench.sqlite3"))
        measure(args.members, args.runs, args.changes)


def measure(members: int, runs: int, changes: int) -> None:
    from django.db import connection

    from rollouts import models as m
    from rollouts.mirror import approve_on_hub, hub_sync
    from rollouts.mirror.actions import credential_save
    from rollouts.models.connections import HubConnection
    from tests.fake_kube import FakeKube

    with FakeKube() as fake:
        started = time.perf_counter()
        hub_fill(fake, members, runs)
        print(f"hub: {members} members, {runs} runs of {members} clusters, {runs} approval requests "
              f"(filled in {time.perf_counter() - started:.1f} s)")
        hub = credential_save(HubConnection(name="bench-hub"), kubeconfig=fake.kubeconfig(), actor="bench")

        started = time.perf_counter()
        hub_sync(connection_id=hub.pk, seconds=0.01)
        first = time.perf_counter() - started
        mirrored = m.MirroredObject.objects.count()
        print(f"first sync (list + mirror):  {first:.2f} s for {mirrored} objects "
              f"({first / mirrored * 1000:.2f} ms per object)")

        stop = threading.Event()
        session = threading.Thread(target=lambda: (hub_sync(connection_id=hub.pk, seconds=3600, stop=stop),
                                                   connection.close()))
        session.start()
        time.sleep(1.0)  # the session is watching
        lags = []
        for i in range(changes):
            r = i % runs
            fake.put(run_object(r, members, generation=i + 1))
            changed = time.perf_counter()
            wanted = f"pass {i + 1}"
            while True:
                status = m.ClusterStagedUpdateRun.objects.filter(name=f"run{r:03d}").values_list(
                    "status__conditions", flat=True).first()
                if status and status[-1].get("message") == wanted:
                    break
                time.sleep(0.005)  # the fake hub and the sync share this GIL
            lags.append((time.perf_counter() - changed) * 1000)
        stop.set()
        session.join()
        print(f"watch lag, hub change -> mirrored row ({changes} changes of a {members}-cluster run): "
              f"p50 {statistics.median(lags):.1f} ms, p99 {percentile(lags, 99):.1f} ms, "
              f"max {max(lags):.1f} ms")

        approvals = []
        for request in m.ClusterApprovalRequest.objects.order_by("name")[:runs]:
            started = time.perf_counter()
            approve_on_hub(request, actor="bench", message="lgtm")
            approvals.append((time.perf_counter() - started) * 1000)
        print(f"approve on the hub ({len(approvals)} requests): p50 {statistics.median(approvals):.1f} ms, "
              f"p99 {percentile(approvals, 99):.1f} ms")


if __name__ == "__main__":
    main()
