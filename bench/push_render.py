"""The server side of a live push: rendering what a run page's push carries
(broadcast.render_run_push) for a run of many clusters, on PostgreSQL, with
the time split by part.

No browser, no Redis: bench/live_latency.py measures the whole path (render,
group_send, the socket, the DOM swap); this one measures only the render,
the part issue 16 asks to be under 10 ms for a 1,000-cluster run, and says
where its time goes. It loads bench/live_latency.py's fleet (one stage of
--members clusters, one run), drives the run one transition at a time as a
Celery worker would (rollouts.engine.runner.run_advance, member syncs in
between), and after each transition renders the push for the page's group.

    .venv/bin/python bench/push_render.py [--members 1000] [--samples 60]
"""

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.live_latency import fleet  # noqa: E402
from tests.real_services import postgres_database, process_env  # noqa: E402

# The parts of a push's render, by the function that does each.
PARTS = (("rollouts.selectors.pages", "run_timeline"), ("rollouts.selectors.timeline", "_failures"),
         ("rollouts.selectors.pages", "run_eta"), ("rollouts.selectors.history", "past_learned"),
         ("rollouts.fragments", "run_model"), ("rollouts.fragments", "render_parts"), ("rollouts.fragments", "delta"))


def timed_parts(spent: dict[str, float]) -> None:
    """Wrap each of PARTS to add its wall time (ms) to `spent`."""
    import importlib

    for module_name, name in PARTS:
        module = importlib.import_module(module_name)
        inner = getattr(module, name)

        def timed(*args, _inner=inner, _name=name, **kwargs):
            started = time.perf_counter()
            try:
                return _inner(*args, **kwargs)
            finally:
                spent[_name] += (time.perf_counter() - started) * 1000

        setattr(module, name, timed)


@contextmanager
def counted_queries():
    from django.db import connection

    queries = []
    with connection.execute_wrapper(lambda execute, sql, params, many, context: (queries.append(sql),
                                                                                 execute(sql, params, many, context))[1]):
        yield queries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=1000, help="clusters of the run (one stage)")
    parser.add_argument("--samples", type=int, default=60, help="transitions rendered")
    parser.add_argument("--profile", metavar="SORT", help="print a cProfile of the renders, sorted by SORT (cumulative, tottime)")
    args = parser.parse_args()

    url, drop = postgres_database()
    try:
        os.environ.update({k: v for k, v in process_env(DATABASE_URL=url, FLEET_SIMULATED_APPLY_SECONDS="0").items()
                           if k not in os.environ or k in ("DATABASE_URL", "DEBUG", "DJANGO_SETTINGS_MODULE")})
        os.environ.pop("REDIS_URL", None)  # fragments are remembered in this process
        import django

        django.setup()
        measure(args)
    finally:
        drop()


def measure(args) -> None:
    from rollouts import broadcast
    from rollouts import models as m
    from rollouts.controllers.family import CLUSTER
    from rollouts.engine import runner
    from rollouts.members.agent import members_sync
    from rollouts.services.objects import manifests_apply

    manifests_apply(docs=fleet(args.members, "push"), actor="bench")
    run = m.ClusterStagedUpdateRun.objects.get(name="push")
    runner.MAX_IMMEDIATE_PASSES = 1  # one transition per advance
    broadcast.render_run(run.KIND, run.pk, ["view"])  # templates compiled before measuring
    broadcast.render_run_push(run.KIND, run.pk, ["view"])  # the first push is the whole timeline
    spent, renders, cpu, queries, sizes = defaultdict(float), [], [], [], []
    profile = cProfile.Profile() if args.profile else None
    timed_parts(spent)
    version = run.resource_version
    while len(renders) < args.samples and m.ClusterStagedUpdateRun.objects.filter(pk=run.pk, active=True).exists():
        runner.run_advance(family=CLUSTER, pk=run.pk)
        now = m.ClusterStagedUpdateRun.objects.values_list("resource_version", flat=True).get(pk=run.pk)
        if now == version:
            members_sync()
            continue
        version = now
        with counted_queries() as sql:
            started, started_cpu = time.perf_counter(), time.process_time()
            profile and profile.enable()
            out = broadcast.render_run_push(run.KIND, run.pk, ["view"])
            profile and profile.disable()
            renders.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - started_cpu) * 1000)
        queries.append(len(sql))
        sizes.append(len(out["view"]))
    report(args, renders, cpu, spent, queries, sizes)
    if profile:
        pstats.Stats(profile).sort_stats(args.profile).print_stats(40)


def report(args, renders: list[float], cpu: list[float], spent: dict[str, float], queries: list[int],
           sizes: list[int]) -> None:
    renders.sort()
    n = len(renders)
    print(f"run of {args.members} clusters, {n} pushes rendered (PostgreSQL)")
    print(f"render p50 {statistics.median(renders):.1f} ms  p90 {renders[int(n * 0.9)]:.1f} ms  "
          f"max {renders[-1]:.1f} ms  (this process's CPU p50 {statistics.median(cpu):.1f} ms)  queries {statistics.median(queries):.0f}  bytes p50 {statistics.median(sizes):,.0f}")
    print("mean per push: " + "  ".join(f"{name} {total / n:.1f} ms" for name, total in spent.items()))


if __name__ == "__main__":
    main()
