"""ETA accuracy benchmark: how far the run page's "about N min left" is from
the time the run really took, at several points of its progress.

The real engine drives real simulated members under the injected clock
(engine_tick() every --step seconds of simulated time, as tests do), on a
fresh SQLite database (or DATABASE_URL if set). Each member's apply takes a
time drawn per run and per cluster: a stage's typical time (canary 60 s,
early 90 s, prod 120 s) × the run's own pace (uniform 0.8–1.2: one release is
slower than another) × a lognormal spread (--sigma). The strategy:

    canary  4 clusters, one at a time, then a 2m TimedWait
    early  12 clusters, maxConcurrency 3
    prod   24 clusters, maxConcurrency 25%, behind an Approval that a
           person gives after 1–8 min (drawn)

--history runs build the placement's past, then each of --runs measured
runs is estimated at every tick with selectors.history.run_eta (the same
call the run page makes; it learns from the last 5 finished runs). The
truth at a moment is the time the run still took, less the time it then
waited for the person (the ETA names approvals instead of counting them).
Reported: the median and p90 absolute error at 0 %, 25 %, 50 %, 75 % and
90 % of the clusters done, in seconds and as a share of the run's length,
and the median signed error (> 0: the ETA said longer than it took).

    .venv/bin/python bench/eta_accuracy.py [--history 5] [--runs 10] [--sigma 0.35] [--seed 7]
"""

import argparse
import os
import random
import statistics
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

STAGES = (("canary", 4, 1, 60.0), ("early", 12, 3, 90.0), ("prod", 24, "25%", 120.0))
POINTS = (0.0, 0.25, 0.5, 0.75, 0.9)


def setup_django(db_path: str) -> None:
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{db_path}")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fleetui.settings")
    os.environ.setdefault("DEBUG", "true")  # a local measurement: no production keys needed
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def manifests() -> list[dict]:
    group = "placement.kubernetes-fleet.io/v1beta1"
    members = [{"apiVersion": "cluster.kubernetes-fleet.io/v1beta1", "kind": "MemberCluster",
                "metadata": {"name": f"{name}-{i:02d}", "labels": {"stage": name, "order": str(i)}}}
               for name, count, _, _ in STAGES for i in range(count)]
    stages = []
    for name, _, concurrency, _ in STAGES:
        stage = {"name": name, "labelSelector": {"matchLabels": {"stage": name}}, "sortingLabelKey": "order",
                 "maxConcurrency": concurrency}
        if name == "canary":
            stage["afterStageTasks"] = [{"type": "TimedWait", "waitTime": "2m"}]
        if name == "prod":
            stage["beforeStageTasks"] = [{"type": "Approval"}]
        stages.append(stage)
    return members + [
        {"apiVersion": group, "kind": "ClusterStagedUpdateStrategy", "metadata": {"name": "bench"},
         "spec": {"stages": stages}},
    ]


def workload(value: str) -> list[dict]:
    return [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}},
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": "bench"},
             "data": {"key": value}}]


PLACEMENT = {"apiVersion": "placement.kubernetes-fleet.io/v1beta1", "kind": "ClusterResourcePlacement",
             "metadata": {"name": "bench"},
             "spec": {"resourceSelectors": [{"group": "", "version": "v1", "kind": "Namespace", "name": "bench"}],
                      "policy": {"placementType": "PickAll"}, "strategy": {"type": "External"}}}


class Applies:
    """Per-member apply times for the current run: drawn once per cluster."""

    def __init__(self, rng: random.Random, sigma: float):
        self.rng, self.sigma, self.pace, self.drawn = rng, sigma, 1.0, {}
        self.typical = {name: seconds for name, _, _, seconds in STAGES}

    def new_run(self) -> None:
        self.pace, self.drawn = self.rng.uniform(0.8, 1.2), {}

    def seconds(self, member: str) -> float:
        if member not in self.drawn:
            base = self.typical[member.rsplit("-", 1)[0]] * self.pace
            self.drawn[member] = base * self.rng.lognormvariate(0, self.sigma)
        return self.drawn[member]


def patch_members(applies: Applies) -> None:
    """Each member's apply takes its drawn time (the simulated connector's is one setting for all)."""
    from rollouts.members import agent, connector_for

    class Drawn:
        def __init__(self, member):
            self.real, self.member = connector_for(member), member.name

        def apply_seconds(self) -> float:
            return applies.seconds(self.member)

        def __getattr__(self, name):
            return getattr(self.real, name)

    agent.connector_for = Drawn


def one_run(name: str, index: str, *, step: float, rng: random.Random, applies: Applies, measure: bool):
    """Drive run `name` to its end; returns [(moment, done fraction, eta seconds)] and its record."""
    from rollouts import clock
    from rollouts import models as m
    from rollouts.api.kinds import KindRegistry
    from rollouts.engine.loop import engine_tick
    from rollouts.selectors.history import run_eta
    from rollouts.selectors.records import run_record
    from rollouts.selectors.runs import progress
    from rollouts.services.approvals import approval_request_approve
    from rollouts.services.objects import manifests_apply

    applies.new_run()
    manifests_apply(docs=[{"apiVersion": "placement.kubernetes-fleet.io/v1beta1", "kind": "ClusterStagedUpdateRun",
                           "metadata": {"name": name},
                           "spec": {"placementName": "bench", "resourceSnapshotIndex": index,
                                    "stagedRolloutStrategyName": "bench"}}], actor="bench")
    gate, approve_at, samples = f"{name}-before-prod", None, []
    for _ in range(20_000):
        engine_tick()
        run = m.ClusterStagedUpdateRun.objects.get(name=name)
        if not run.active:
            return samples, run_record(name, run.spec, run.status)
        if approve_at is None and m.ClusterApprovalRequest.objects.filter(name=gate).exists():
            approve_at = clock.now().timestamp() + rng.uniform(60, 480)
        if approve_at is not None and clock.now().timestamp() >= approve_at:
            approval_request_approve(kind=KindRegistry().resolve("careq"), name=gate, namespace="", actor="bench")
            approve_at = float("inf")
        if measure and (run.status or {}).get("stagesStatus"):
            done, total = progress(run.status)
            samples.append((clock.now(), done / total, run_eta(run).seconds))
        clock.advance(step)
    raise SystemExit(f"{name} did not finish")


def person_seconds(record, start: datetime) -> float:
    """Seconds after `start` the run waited for a person (its Approval gates)."""
    waited = 0.0
    for stage in record.stages:
        for gate in stage.gates:
            if gate.type == "Approval" and gate.started and gate.ended and gate.ended > start:
                waited += (gate.ended - max(gate.started, start)).total_seconds()
    return waited


def errors_by_point(samples, record) -> dict[float, tuple[float, float]]:
    """{progress point: (error s, run length s)} for one run (error > 0: the ETA said longer)."""
    length = (record.ended - record.started).total_seconds() - person_seconds(record, record.started)
    found = {}
    for point in POINTS:
        sample = next((s for s in samples if s[1] >= point and s[2] is not None), None)
        if sample is None:
            continue
        moment, _, eta = sample
        truth = (record.ended - moment).total_seconds() - person_seconds(record, moment)
        found[point] = (eta - truth, length)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--history", type=int, default=5, help="finished runs before the measured ones")
    parser.add_argument("--runs", type=int, default=10, help="runs measured")
    parser.add_argument("--sigma", type=float, default=0.35, help="lognormal spread of one apply's time")
    parser.add_argument("--step", type=float, default=5.0, help="simulated seconds between engine ticks")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        setup_django(str(Path(tmp) / "bench.sqlite3"))
        measure(args)


def measure(args) -> None:
    from rollouts import clock
    from rollouts.services.objects import manifests_apply

    rng = random.Random(args.seed)
    applies = Applies(rng, args.sigma)
    patch_members(applies)
    results: dict[float, list[tuple[float, float]]] = {p: [] for p in POINTS}
    with clock.frozen(datetime(2026, 3, 2, 9, 0, tzinfo=UTC)):
        manifests_apply(docs=manifests() + workload("v1"), actor="bench")
        manifests_apply(docs=[PLACEMENT], actor="bench")
        manifests_apply(docs=workload("v2"), actor="bench")  # snapshots 0 and 1: each run applies anew
        for i in range(args.history + args.runs):
            measured = i >= args.history
            samples, record = one_run(f"run-{i:02d}", str(i % 2), step=args.step, rng=rng, applies=applies,
                                      measure=measured)
            for point, result in errors_by_point(samples, record).items():
                results[point].append(result)
            clock.advance(600)
    report(args, results)


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]


def report(args, results) -> None:
    print(f"history={args.history} measured runs={args.runs} sigma={args.sigma} step={args.step}s seed={args.seed}")
    print("progress | median abs error | p90 abs error | median abs error / run length | median signed error")
    for point in POINTS:
        rows = results[point]
        if not rows:
            print(f"{point:>7.0%} | no sample")
            continue
        errors = [abs(e) for e, _ in rows]
        shares = [abs(e) / length for e, length in rows]
        print(f"{point:>7.0%} | {statistics.median(errors):>12.0f} s | {_p90(errors):>9.0f} s | "
              f"{statistics.median(shares):>6.1%} | {statistics.median(e for e, _ in rows):>+5.0f} s")


if __name__ == "__main__":
    main()
