"""What freezes cost the engine: the time of an idle engine_tick() over N
active runs, each waiting at an approval gate on a placement of its own,
with no freeze, with 10 freezes holding placements none of the runs are on
(the worst case of matching), and with one freeze holding them all.

The freezes are read once per tick (tests/test_freezes.py asserts it), so
the tick should cost the same in the three cases within the noise.

    .venv/bin/python bench/freeze_tick.py [--runs 50] [--ticks 30]
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.engine_scale import setup_django  # noqa: E402


def build(runs: int) -> None:
    from rollouts.engine.loop import engine_tick
    from rollouts.services.objects import manifests_apply

    group = "placement.kubernetes-fleet.io/v1beta1"
    docs = [{"apiVersion": "cluster.kubernetes-fleet.io/v1beta1", "kind": "MemberCluster",
             "metadata": {"name": f"member{i}", "labels": {"env": "staging"}}} for i in range(3)]
    docs += [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}},
             {"apiVersion": group, "kind": "ClusterStagedUpdateStrategy", "metadata": {"name": "gated"},
              "spec": {"stages": [{"name": "all", "labelSelector": {}, "maxConcurrency": 3,
                                   "afterStageTasks": [{"type": "Approval"}]}]}}]
    for i in range(runs):
        docs.append({"apiVersion": group, "kind": "ClusterResourcePlacement",
                     "metadata": {"name": f"p{i}", "labels": {"team": f"t{i}"}},
                     "spec": {"resourceSelectors": [{"group": "", "version": "v1", "kind": "Namespace",
                                                     "name": "bench"}],
                              "policy": {"placementType": "PickAll"}, "strategy": {"type": "External"}}})
    manifests_apply(docs=docs, actor="bench")
    manifests_apply(docs=[{"apiVersion": group, "kind": "ClusterStagedUpdateRun", "metadata": {"name": f"r{i}"},
                           "spec": {"placementName": f"p{i}", "resourceSnapshotIndex": "0",
                                    "stagedRolloutStrategyName": "gated"}} for i in range(runs)], actor="bench")
    for _ in range(20):  # until every run waits at its gate
        engine_tick()


def idle_ticks(count: int) -> list[float]:
    from rollouts.engine.loop import engine_tick

    engine_tick()  # the first tick after a change may still write
    times = []
    for _ in range(count):
        started = time.perf_counter()
        engine_tick()
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--ticks", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        setup_django(str(Path(tmp) / "bench.sqlite3"))
        from rollouts.services.freezes import freeze_create, freeze_end

        build(args.runs)
        cases = [("no freeze", idle_ticks(args.ticks))]
        for i in range(10):
            freeze_create(name=f"other{i}", reason="bench", actor="bench", selector=f"team=nobody{i}")
        cases.append(("10 freezes, none matching", idle_ticks(args.ticks)))
        for i in range(10):
            freeze_end(name=f"other{i}", actor="bench")
        freeze_create(name="all", reason="bench", actor="bench")
        cases.append(("1 freeze holding every run", idle_ticks(args.ticks)))
        print(f"{args.runs} active runs, {args.ticks} idle engine ticks each (ms per tick)")
        for name, times in cases:
            times.sort()
            print(f"  {name:28} p50 {statistics.median(times):7.1f}   p90 {times[int(len(times) * 0.9)]:7.1f}")


if __name__ == "__main__":
    main()
