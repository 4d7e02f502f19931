"""Where the engine's time goes: the report's fleet (bench/kubefleet_report.py)
at a size of your choice, its rollouts advanced in this one process under
cProfile. `--mode embedded` (the default): by `engine_tick()`, what `fleet
engine` runs, on a SQLite file. `--mode celery`: by the Celery tasks' own code
on PostgreSQL and Redis, the tasks a worker would take run here one after
another (what the workers spend, without the broker's and the pool's own).

    .venv/bin/python bench/profile_engine.py [--members 100] [--placements 10] [--concurrent 10] [--top 30]
    .venv/bin/python bench/profile_engine.py --mode celery --members 1000 --placements 100 --concurrent 100 --no-profile

Prints the wall time to Succeeded, the number of run passes and applies, what
the rollouts cost in counts (which noise on a shared machine does not move:
transactions committed, audit seals, model instances built), and the functions
with the most cumulative time (ours and the ORM's).
"""

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


class Counts:
    """Transactions, audit seals and model instances while the rollouts run.

    A transaction is an atomic block's commit, or a write statement outside
    one (SQLite under autocommit commits each); the seals' own transactions
    are among them and are also counted apart."""

    WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")

    def __init__(self):
        self.commits = self.autocommit_writes = self.seals = self.seal_batches = 0
        self.instances: Counter = Counter()

    def start(self) -> None:
        from django.db import connection
        from django.db.backends.base.base import BaseDatabaseWrapper
        from django.db.models.signals import post_init

        from rollouts.services import audit

        commit, seal, batch = BaseDatabaseWrapper.commit, audit.audit_seal, audit._seal_batch

        def counted_commit(wrapper):
            self.commits += 1
            return commit(wrapper)

        def counted_seal(*a, **kw):
            self.seals += 1
            return seal(*a, **kw)

        def counted_batch(*a, **kw):
            self.seal_batches += 1
            return batch(*a, **kw)

        BaseDatabaseWrapper.commit, audit.audit_seal, audit._seal_batch = counted_commit, counted_seal, counted_batch
        connection.execute_wrappers.append(self._statement)
        post_init.connect(self._built, weak=False)

    def _statement(self, execute, sql, params, many, context):
        if not context["connection"].in_atomic_block and sql.lstrip().upper().startswith(self.WRITES):
            self.autocommit_writes += 1
        return execute(sql, params, many, context)

    def _built(self, sender, **kwargs):
        self.instances[sender.__name__] += 1

    def report(self, runs: int) -> str:
        transactions = self.commits + self.autocommit_writes
        top = ", ".join(f"{name} {n:,}" for name, n in self.instances.most_common(4))
        return (f"transactions: {transactions:,} ({transactions / runs:.1f} a run: {self.commits:,} commits of atomic "
                f"blocks, {self.autocommit_writes:,} autocommit writes); audit seals: {self.seals:,} "
                f"({self.seal_batches:,} sealing transactions); model instances: "
                f"{sum(self.instances.values()):,} ({top})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["embedded", "celery"], default="embedded")
    parser.add_argument("--members", type=int, default=100)
    parser.add_argument("--placements", type=int, default=10)
    parser.add_argument("--per-placement", type=int, default=100)
    parser.add_argument("--concurrent", type=int, default=10)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--sort", default="cumulative", choices=["cumulative", "tottime"])
    parser.add_argument("--no-profile", action="store_true", help="time only (cProfile roughly doubles the time)")
    parser.add_argument("--callees", help="also print what this function (a name, e.g. load_world) called")
    parser.add_argument("--save", help="also write the raw profile to this file (for pstats)")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="fleetui-profile-"))
    os.environ.update(DATABASE_URL=f"sqlite:///{tmp / 'profile.sqlite3'}", FLEET_SIMULATED_APPLY_SECONDS="0",
                      DEBUG="true", REDIS_URL="", LOG_LEVEL="WARNING", DJANGO_SETTINGS_MODULE="fleetui.settings")
    drop = None
    if args.mode == "celery":
        from tests.real_services import RedisServer, postgres_database

        url, drop = postgres_database()
        redis = RedisServer(tmp).start()
        os.environ.update(DATABASE_URL=url, REDIS_URL=redis.url)
    try:
        _profile(args)
    finally:
        if drop is not None:
            from django.db import connections

            connections.close_all()
            redis.kill()
            drop()


def _profile(args) -> None:
    import django

    django.setup()
    from django.core.management import call_command

    from bench.kubefleet_report import members_docs, placement_docs, run_doc, strategy_doc
    from rollouts import models as m
    from rollouts.engine import loop, runner
    from rollouts.services.objects import manifests_apply

    call_command("migrate", verbosity=0)
    per = args.per_placement
    worker = _Worker() if args.mode == "celery" else None
    manifests_apply(docs=members_docs(args.members, per), actor="bench")
    manifests_apply(docs=[strategy_doc()], actor="bench")
    groups = max(1, args.members // per)
    for i in range(args.placements):
        manifests_apply(docs=placement_docs(f"app{i:04d}", i % groups), actor="bench")
    loop.engine_tick()  # snapshots and bindings settle
    if worker:
        worker.queued.clear()  # what the setup's writes asked for: settled above
    runs = [f"run{i:04d}" for i in range(args.concurrent)]
    manifests_apply(docs=[run_doc(name, f"app{i:04d}") for i, name in enumerate(runs)], actor="bench")

    passes = {"n": 0, "loads": 0}
    one_pass, load_world = runner._one_pass, runner.load_world

    def counted(*a, **kw):
        passes["n"] += 1
        return one_pass(*a, **kw)

    def counted_load(*a, **kw):
        passes["loads"] += 1
        return load_world(*a, **kw)

    runner._one_pass, runner.load_world = counted, counted_load
    counts = Counts()
    counts.start()
    profile, started, cpu = cProfile.Profile(), time.perf_counter(), time.process_time()
    if not args.no_profile:
        profile.enable()
    while m.ClusterStagedUpdateRun.objects.filter(active=True).exists():
        if worker:
            worker.work()
        else:
            loop.engine_tick()
    profile.disable()
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    applied = m.ClusterResourceBinding.objects.filter(owner__name__in=[f"app{i:04d}" for i in range(args.concurrent)],
                                                       applied_generation__gt=1).count()
    print(f"{args.concurrent} runs of {per} clusters: {wall:.2f} s in one process ({cpu:.2f} s of CPU: steadier "
          f"on a shared machine), {passes['n']} run passes ({passes['loads']} loading the world), "
          f"{applied} clusters updated ({applied / wall:.0f}/s)")
    print(counts.report(args.concurrent))
    if worker:
        print(f"tasks taken: {worker.taken}")
    if args.no_profile:
        return
    if args.save:
        profile.dump_stats(args.save)
    stats = pstats.Stats(profile).sort_stats(args.sort)
    stats.print_stats(args.top)
    if args.callees:
        stats.print_callees(args.callees)


class _Worker:
    """A Celery worker's part, in this process: the tasks that would be
    sent are kept in a list and taken in order (inside a task, as a worker
    runs them, so continuations run in it); the broker and the pool are
    left out. The beat's sweep queues the active runs when the list runs dry."""

    def __init__(self):
        from celery import current_app

        from rollouts.engine import wakeup

        self.app, self.queued, self.taken = current_app, [], Counter()
        def send(name, args=None, kwargs=None, *_, **__):
            self.queued.append((name, tuple(args or ()), kwargs or {}))

        current_app.send_task = send
        wakeup.current_task = object()  # every step below runs as a worker's task does

    def work(self) -> None:
        from rollouts import tasks
        from rollouts.services import audit

        if not self.queued:
            tasks.runs_advance_active()
        while self.queued:
            name, args, kwargs = self.queued.pop(0)
            self.taken[name.rpartition(".")[2]] += 1
            self.app.tasks[name].run(*args, **kwargs)
        audit.audit_seal()


if __name__ == "__main__":
    main()
