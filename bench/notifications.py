"""Notifications: how fast a change reaches a webhook, and what subscriptions
cost the engine.

Embedded mode, one process, a fresh SQLite database (WAL), receivers on
loopback (tests/notify_receivers.py):

  latency   100 webhook subscriptions to one receiver that answers at once;
            --events changes (a freeze starting), each published as a
            committed write publishes it; the engine loop's sender thread
            sends. Reports, over every delivery, the time from publish to
            the receiver reading the request (p50, p99), and the time until
            the 100th delivery of an event arrived.
  engine    --runs runs (each its own placement over --members members, two
            stages) driven to Succeeded by engine_tick(), as `fleet engine`
            does, with the notifier subscribed (apps.py) and the sender
            thread running; 0 subscriptions against 100 subscriptions to a
            receiver that never answers in time (each attempt waits for the
            FLEET_NOTIFY_TIMEOUT_SECONDS timeout). Reports the engine time per
            pass (engine_tick) for each, alternating trials: wall time, and
            the CPU time of the engine's own thread (what the pass itself
            does; wall time also counts the other threads of the process,
            the GIL, and every other job on the machine).

  hand-off  (--celery-hand-off REDIS_URL) Celery mode: the time one commit's
            reaction takes on the committing thread (the engine worker's),
            0 against 100 subscriptions (it queues the events for the
            process's hand-off thread, which sends the task to Redis).

    .venv/bin/python bench/notifications.py [--events 20] [--runs 10] [--members 6] [--trials 3]
    .venv/bin/python bench/notifications.py --celery-hand-off redis://127.0.0.1:6379/15
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
SUBSCRIPTIONS = 100


def setup_django(db_path: str, *, celery: bool = False) -> None:
    os.environ["DATABASE_URL"] = f"sqlite:///{db_path}"
    if not celery:
        os.environ.pop("REDIS_URL", None)  # embedded mode: the sender is a thread
    os.environ["FLEET_SIMULATED_APPLY_SECONDS"] = "0"
    os.environ.setdefault("FLEET_NOTIFY_TIMEOUT_SECONDS", "2")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fleetui.settings")
    os.environ.setdefault("DEBUG", "true")  # a local measurement: no production keys needed
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def subscribe(url: str, prefix: str) -> None:
    from rollouts.services.notifications import subscription_create

    for i in range(SUBSCRIPTIONS):
        subscription_create(name=f"{prefix}-{i:03d}", channel="webhook", target=url, actor="bench")


def latency(events: int) -> None:
    from rollouts import changes
    from rollouts import models as m
    from tests.notify_receivers import receiver

    with receiver("ok") as hook:
        subscribe(hook.url, "fast")
        published, last = [], []
        for i in range(events):
            before = len(hook.requests)
            published.append(time.monotonic())
            changes.publish(changes.FreezeChanged(f"bench-{i}", True))  # as after a commit
            hook.wait_for(before + SUBSCRIPTIONS, timeout=120)
            last.append(hook.requests[-1]["received"] - published[-1])
        by_key = {}
        for request in hook.requests:
            by_key.setdefault(request["headers"]["X-Fleet-Delivery"], []).append(request["received"])
        keys = sorted(by_key, key=lambda k: min(by_key[k]))
        lags = [(t - published[n]) * 1000 for n, key in enumerate(keys) for t in by_key[key]]
    m.Subscription.objects.all().delete()
    print(f"latency: {events} events x {SUBSCRIPTIONS} webhook subscriptions = {len(lags)} deliveries")
    print(f"  publish -> received: p50 {percentile(lags, 50):.1f} ms, p99 {percentile(lags, 99):.1f} ms")
    print(f"  publish -> 100th delivery of the event: p50 {statistics.median(last) * 1000:.0f} ms, "
          f"max {max(last) * 1000:.0f} ms")


def fleet(members: int) -> None:
    from rollouts.services.objects import manifests_apply

    manifests_apply(actor="bench", docs=[
        {"apiVersion": "cluster.kubernetes-fleet.io/v1beta1", "kind": "MemberCluster",
         "metadata": {"name": f"member{i:02d}", "labels": {"stage": str(i % 2), "order": str(i)}}}
        for i in range(members)] + [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}},
        {"apiVersion": "placement.kubernetes-fleet.io/v1beta1", "kind": "ClusterStagedUpdateStrategy",
         "metadata": {"name": "bench"},
         "spec": {"stages": [{"name": f"stage{s}", "labelSelector": {"matchLabels": {"stage": str(s)}},
                              "sortingLabelKey": "order"} for s in range(2)]}}])


def drive(prefix: str, runs: int) -> list[float]:
    """Start `runs` runs (each on a placement of its own) and tick until all
    succeeded; the duration of every engine_tick()."""
    from rollouts import models as m
    from rollouts.engine.loop import engine_tick
    from rollouts.services.objects import manifests_apply

    docs = []
    for r in range(runs):
        docs.append({"apiVersion": "placement.kubernetes-fleet.io/v1beta1", "kind": "ClusterResourcePlacement",
                     "metadata": {"name": f"{prefix}-{r}"},
                     "spec": {"resourceSelectors": [{"group": "", "version": "v1", "kind": "Namespace",
                                                     "name": "bench"}],
                              "policy": {"placementType": "PickAll"}, "strategy": {"type": "External"}}})
    manifests_apply(docs=docs, actor="bench")
    manifests_apply(actor="bench", docs=[
        {"apiVersion": "placement.kubernetes-fleet.io/v1beta1", "kind": "ClusterStagedUpdateRun",
         "metadata": {"name": f"{prefix}-{r}"},
         "spec": {"placementName": f"{prefix}-{r}", "resourceSnapshotIndex": "0",
                  "stagedRolloutStrategyName": "bench"}} for r in range(runs)])
    ticks = []
    while m.ClusterStagedUpdateRun.objects.filter(name__startswith=f"{prefix}-", active=True).exists():
        started, cpu = time.perf_counter(), time.thread_time()
        engine_tick()
        ticks.append((time.perf_counter() - started, time.thread_time() - cpu))
        if len(ticks) > 1000:
            raise SystemExit("the runs did not finish")
    return ticks


def settled(owed: int) -> None:
    """Wait until the embedded sender recorded the deliveries of the trial
    (before the subscriptions change under it)."""
    from rollouts import models as m

    deadline = time.monotonic() + 60
    while m.Delivery.objects.count() < owed and time.monotonic() < deadline:
        time.sleep(0.05)


def engine(runs: int, members: int, trials: int, *, sender_on: bool = True) -> None:
    from rollouts import models as m
    from rollouts import notifier
    from tests.notify_receivers import receiver

    fleet(members)
    stop = threading.Event()
    sender = notifier.sender_start(stop) if sender_on else None
    results = {"0 subscriptions": [], f"{SUBSCRIPTIONS} subscriptions, receiver times out": []}
    with receiver("slow", delay=30.0) as hook:
        subscribe(hook.url, "slow")
        drive("warmup", runs)
        settled(runs * SUBSCRIPTIONS)
        for trial in range(trials):
            for index, label in enumerate(results):
                m.Subscription.objects.update(enabled=index > 0)
                results[label] += drive(f"t{trial}-{index}", runs)
                settled((trial + 2) * runs * SUBSCRIPTIONS if index else 0)
        owed = m.Delivery.objects.count()
        stop.set()
        notifier.wake()
    print(f"engine: {runs} runs x {members} members, 2 stages, {trials} alternating trials each")
    base = [statistics.median(t[i] for t in results["0 subscriptions"]) for i in (0, 1)]
    for label, ticks in results.items():
        wall, cpu = (statistics.median(t[i] for t in ticks) for i in (0, 1))
        print(f"  {label}: engine pass p50 {wall * 1000:.1f} ms wall ({(wall / base[0] - 1) * 100:+.1f} %), "
              f"{cpu * 1000:.1f} ms CPU of the engine's thread ({(cpu / base[1] - 1) * 100:+.1f} %), "
              f"{len(ticks)} passes")
    print(f"  deliveries owed meanwhile: {owed}; receiver requests started: {len(hook.requests)} "
          f"(each waits out the {os.environ['FLEET_NOTIFY_TIMEOUT_SECONDS']} s timeout in the sender thread)")
    if sender is not None:
        sender.join(timeout=1)


def hand_off(n: int) -> None:
    """Celery mode (REDIS_URL set): what the committing thread pays per
    commit for notifications, 0 against 100 subscriptions."""
    from rollouts import changes, notifier
    from rollouts import models as m

    event = changes.RunChanged("ClusterStagedUpdateRun", 1, changes.Origin.ENGINE)
    subscribe("http://127.0.0.1:9/never", "celery")
    for label, enabled in (("0 subscriptions", False), (f"{SUBSCRIPTIONS} subscriptions", True)):
        m.Subscription.objects.update(enabled=enabled)
        times = []
        for _ in range(n):
            started = time.perf_counter()
            notifier.on_changes([event])
            times.append((time.perf_counter() - started) * 1000)
            time.sleep(0.002)  # commits a few ms apart, as an engine worker's
        notifier._hand_off().flush()
        print(f"celery hand-off, {label}: p50 {percentile(times, 50):.2f} ms, p99 {percentile(times, 99):.2f} ms "
              f"per commit ({n} commits)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--members", type=int, default=6)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--celery-hand-off", metavar="REDIS_URL",
                        help="only measure the Celery-mode hand-off per commit, against this Redis")
    parser.add_argument("--no-sender", action="store_true", help="engine: the reaction alone (nothing sent)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.celery_hand_off:
            os.environ["REDIS_URL"] = args.celery_hand_off
            setup_django(str(Path(tmp) / "bench.sqlite3"), celery=True)
            hand_off(500)
            return
        setup_django(str(Path(tmp) / "bench.sqlite3"))
        stop = threading.Event()
        from rollouts import notifier

        if not args.skip_latency:
            sender = notifier.sender_start(stop)
            latency(args.events)
            stop.set()
            notifier.wake()
            sender.join(timeout=10)
        engine(args.runs, args.members, args.trials, sender_on=not args.no_sender)


if __name__ == "__main__":
    main()
