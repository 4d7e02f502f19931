"""Live-update latency: from the engine's commit to the DOM change in a browser.

Production layout on loopback: PostgreSQL, Redis (broker and channel layer),
the web on a Daphne process of its own. This process is the engine: it
advances one run a pass at a time through rollouts.engine.runner.run_advance
(as a Celery worker would) and records the wall-clock time right after each
pass's transaction commits, keyed by the run's resourceVersion. A browser
page watching the run records, with a MutationObserver, the wall-clock time
(performance.timeOrigin + performance.now()) at which a #timeline of that
version enters its DOM. Both clocks are this machine's.

Each configuration takes N transitions (a cluster starting or finishing, the
stage or the run changing state) of runs of M clusters in one stage, one
cluster at a time, run after run; transitions are spaced so that each is
measured alone:

    1 page                 one Chromium page
    1 page + 49 sockets    the measuring page and 49 plain WebSocket clients
                           (in a process of their own), connected right before
                           the first transition: their first messages are
                           rendered while the first pushes go out (a connect
                           storm; BENCHMARKS.md, "The fan-out stall")
    50 pages               50 pages in one Chromium, the first one measuring;
                           spaced wider (--pages-gap): each push is 50 DOM
                           swaps on this machine's two cores

Besides commit -> DOM it splits each latency into commit -> sent (render and
group_send in the engine's process), sent -> message (Redis, Daphne, the
socket) and message -> DOM (htmx's out-of-band swaps in the page: a whole
timeline, or the fragments that changed, rollouts/fragments.py), and times
the render of each run push alone (broadcast.render_run_push) and its size.

    .venv/bin/python bench/live_latency.py [--samples 100] [--members 20] [--gap 0.3] [--tabs 50]
    .venv/bin/python bench/live_latency.py --members 1000 --samples 50 --tabs 0    # issue 16's big run
Target: p99 under 150 ms (100 ms for the 1,000-cluster run with 50 viewers).
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser.test_live_celery import daphne  # noqa: E402
from tests.real_services import Hub, RedisServer, free_port, postgres_database  # noqa: E402

TARGET_MS = 150
# The engine and every ORM call run on this one thread: Playwright's sync API
# keeps an event loop in the main thread, where async_to_sync (the push) may not run.
ENGINE_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bench-engine")


def on_engine(fn, *args, **kwargs):
    return ENGINE_THREAD.submit(fn, *args, **kwargs).result()
PASSWORD = "bench-password"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-gpu", "--disable-renderer-backgrounding", "--disable-background-timer-throttling",
                 "--disable-backgrounding-occluded-windows"]

# In the measuring page: the moment each version of #timeline enters the DOM
# (a whole timeline pushed, or a delta applied: static/live.js then sets its
# data-version, after the swaps), and when the WebSocket message that carried
# it arrived.
OBSERVE = """() => {
  const now = () => performance.timeOrigin + performance.now();
  window.__changes = [];
  let arrived = 0;
  document.addEventListener("htmx:wsBeforeMessage", () => { arrived = now(); });
  new MutationObserver(records => {
    const at = now();
    for (const record of records) {
      if (record.type === "attributes" && record.target.id === "timeline") {
        window.__changes.push([Number(record.target.dataset.version), at, arrived]);
      }
      for (const node of record.addedNodes || []) {
        if (node.id === "timeline") window.__changes.push([Number(node.dataset.version), at, arrived]);
      }
    }
  }).observe(document.body, {childList: true, subtree: true, attributes: true, attributeFilter: ["data-version"]});
}"""


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def fleet(members: int, name: str) -> list[dict]:
    group = "placement.kubernetes-fleet.io/v1beta1"
    docs = [{"apiVersion": "cluster.kubernetes-fleet.io/v1beta1", "kind": "MemberCluster",
             "metadata": {"name": f"m{i:03d}", "labels": {"ring": "all", "order": str(i)}}} for i in range(members)]
    docs += [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": name}, "data": {"k": "1"}},
        {"apiVersion": group, "kind": "ClusterResourcePlacement", "metadata": {"name": name},
         "spec": {"resourceSelectors": [{"group": "", "version": "v1", "kind": "Namespace", "name": name}],
                  "strategy": {"type": "External"}}},
        {"apiVersion": group, "kind": "ClusterStagedUpdateStrategy", "metadata": {"name": name},
         "spec": {"stages": [{"name": "all", "labelSelector": {"matchLabels": {"ring": "all"}},
                              "sortingLabelKey": "order"}]}},
        {"apiVersion": group, "kind": "ClusterStagedUpdateRun", "metadata": {"name": name},
         "spec": {"placementName": name, "resourceSnapshotIndex": "0", "stagedRolloutStrategyName": name}},
    ]
    return docs


class Engine:
    """Advances runs one pass at a time, recording when each status change commits
    and when its push has been handed to Redis."""

    def __init__(self):
        from django.db import transaction

        from rollouts import broadcast
        from rollouts.engine import runner

        self.commits: dict[tuple[str, int], float] = {}
        self.pushed: dict[tuple[str, int], float] = {}
        runner.MAX_IMMEDIATE_PASSES = 1  # one transition per advance, so each is measured alone
        save, push, pending = runner._save, broadcast.push, {}

        def timed_save(run, decision, world):
            box, status = {}, run.status
            # Registered before the broadcast's own callback: runs right after COMMIT. The
            # key is taken then: the advance writes the run's row (its new resourceVersion)
            # after this pass, when its passes stop (runner._one_pass).
            transaction.on_commit(lambda: box and self.commits.setdefault(box.setdefault(
                "key", (run.name, run.resource_version)), time.time()))
            changed = save(run, decision, world)
            if changed and run.status is not status:
                box["run"] = run
                pending["box"] = box
            return changed

        send_all = broadcast._send_all

        async def timed_send_all(layer, messages):
            # A run page's push is sent before the overview and the nav's count are
            # rendered (broadcast._run_pages_first): "sent" is when it was handed over.
            await send_all(layer, messages)
            if "key" in pending.get("box", {}) and any(group.startswith("run-") for group, _ in messages):
                self.pushed.setdefault(pending.pop("box")["key"], time.time())

        def timed_push(keys):
            push(keys)
            pending.pop("box", None)

        render = broadcast.render_run_push

        def timed_render(kind, pk, audiences):
            started = time.perf_counter()
            out = render(kind, pk, audiences)
            self.renders.append(((time.perf_counter() - started) * 1000, sum(map(len, out.values()))))
            return out

        self.renders: list[tuple[float, int]] = []  # (ms, bytes) of each run push's render
        self.full_renders: list[float] = []  # ms of a whole timeline's render, for comparison
        runner._save, broadcast.push, broadcast.render_run_push = timed_save, timed_push, timed_render
        broadcast._send_all = timed_send_all

    def drive(self, name: str, samples: int, gap: float) -> list[int]:
        """Advance the run until it finishes or `samples` transitions were made;
        returns the versions that were pushed."""
        from rollouts import models as m
        from rollouts.controllers.family import CLUSTER
        from rollouts.engine import runner
        from rollouts.members.agent import members_sync

        pk = m.ClusterStagedUpdateRun.objects.get(name=name).pk
        versions = []
        while len(versions) < samples and m.ClusterStagedUpdateRun.objects.filter(pk=pk, active=True).exists():
            before = len(self.commits)
            runner.run_advance(family=CLUSTER, pk=pk)
            if len(self.commits) > before:
                versions.append(max(v for (n, v) in self.commits if n == name))
                time.sleep(gap)
            else:
                members_sync()
        return versions


def serve_clients(count: int, url: str, cookie: str, origin: str) -> None:
    """`--clients`: plain WebSocket clients that read (and drop) every push,
    until stdin closes. A process of their own, so their reading does not
    compete with the engine for this process's GIL."""
    import websocket

    connected = []
    for _ in range(count):
        client = websocket.WebSocketApp(url, cookie=cookie, on_message=lambda ws, message: None,
                                        on_open=lambda ws: connected.append(ws))
        threading.Thread(target=client.run_forever, kwargs={"origin": origin}, daemon=True).start()
    while len(connected) < count:
        time.sleep(0.05)
    print("connected", flush=True)
    sys.stdin.read()


def sockets(count: int, url: str, cookie: str, origin: str):
    if not count:
        return None
    proc = subprocess.Popen([sys.executable, __file__, "--clients", str(count), url, cookie, origin],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "connected"
    return proc


def signed_in_context(browser, hub: Hub):
    context = browser.new_context(base_url=hub.base_url)
    context.set_default_timeout(60_000)
    page = context.new_page()
    page.goto("/accounts/login/")
    page.get_by_label("User name").fill("vera")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/")
    return context, page


def one_run(name: str, tabs: list, hub: Hub, engine: Engine, args, socks: int, gap: float) -> dict:
    """Watch a new run from every tab (and `socks` sockets) and drive it to the
    end; {version: (commit, sent, message, DOM)} in ms as the first tab saw it."""
    from rollouts import broadcast
    from rollouts import models as m
    from rollouts.services.objects import manifests_apply

    on_engine(manifests_apply, docs=fleet(args.members, name), actor="bench")
    run = on_engine(m.ClusterStagedUpdateRun.objects.get, name=name)
    for tab in tabs:
        tab.goto(f"/runs/{name}/")
    for tab in tabs:
        tab.wait_for_selector(".live-status.is-live", state="attached")
    session = next(c["value"] for c in tabs[0].context.cookies() if c["name"] == "sessionid")
    ws_url = hub.base_url.replace("http://", "ws://") + broadcast.run_socket_path(run)
    clients = sockets(socks, ws_url, f"sessionid={session}", hub.base_url)
    on_engine(broadcast.render_run, run.KIND, run.pk, ["view"])  # templates compiled before measuring
    # The first push to a group nothing was pushed to is the whole timeline;
    # from then on only what changed. Sent before measuring, and not counted.
    before = len(engine.renders)
    on_engine(broadcast.push, [("run", run.KIND, run.pk)])
    del engine.renders[before:]
    time.sleep(0.5)
    tabs[0].evaluate(OBSERVE)
    versions = on_engine(engine.drive, name, args.samples, gap)
    time.sleep(max(2.0, gap))
    engine.full_renders += [on_engine(full_render_ms, run) for _ in range(3)]  # what a whole-timeline push costs
    seen = {version: (at, arrived) for version, at, arrived in tabs[0].evaluate("window.__changes")}
    if clients:
        clients.communicate("")
    return {v: (engine.commits[(name, v)] * 1000, engine.pushed.get((name, v), 0) * 1000, *seen.get(v, (0, 0)))
            for v in versions}


def full_render_ms(run) -> float:
    """The render of the run's whole timeline (a socket's connect, or a push before issue 16)."""
    from rollouts import broadcast

    started = time.perf_counter()
    broadcast.render_run(run.KIND, run.pk, ["view"])
    return (time.perf_counter() - started) * 1000


def measure(label: str, browser, hub: Hub, engine: Engine, args, *, pages: int, socks: int, gap: float) -> dict:
    """Runs of --members clusters, one after another, until --samples transitions."""
    context, first = signed_in_context(browser, hub)
    tabs = [first] + [context.new_page() for _ in range(pages - 1)]
    print(f"{label}: {pages} page(s) and {socks} socket(s)", flush=True)
    timings, engine.renders[:], engine.full_renders[:] = [], [], []
    while len(timings) < args.samples:
        name = f"lat-{pages}p-{socks}s-{len(timings)}"
        timings += list(one_run(name, tabs, hub, engine, args, socks, gap).values())
    context.close()
    timings = timings[:args.samples]
    measured = [t for t in timings if t[1] and t[2]]
    latencies = [dom - commit for commit, sent, dom, message in measured]
    stages = {"commit->sent": [sent - commit for commit, sent, dom, message in measured],
              "sent->message": [message - sent for commit, sent, dom, message in measured],
              "message->DOM": [dom - message for commit, sent, dom, message in measured]}
    renders = [ms for ms, size in engine.renders]
    return {"label": label, "n": len(latencies), "missed": len(timings) - len(measured), "gap": gap,
            "render": (statistics.median(renders), percentile(renders, 99)) if renders else (0, 0),
            "bytes": statistics.median(size for ms, size in engine.renders) if renders else 0,
            "full": statistics.median(engine.full_renders) if engine.full_renders else 0,
            "p50": statistics.median(latencies), "p99": percentile(latencies, 99), "max": max(latencies),
            "stages": {k: (statistics.median(v), percentile(v, 99)) for k, v in stages.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=100, help="transitions measured per configuration")
    parser.add_argument("--members", type=int, default=20, help="clusters of each run")
    parser.add_argument("--gap", type=float, default=0.3, help="seconds between transitions")
    parser.add_argument("--tabs", type=int, default=50, help="pages in one Chromium for the last configuration (0: skip)")
    parser.add_argument("--pages-gap", type=float, default=2.0,
                        help="seconds between transitions with --tabs pages (each push is that many DOM swaps here)")
    parser.add_argument("--clients", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.clients:
        count, url, cookie, origin = args.clients
        return serve_clients(int(count), url, cookie, origin)

    url, drop = postgres_database()
    tmp = Path(tempfile.mkdtemp(prefix="live-latency-"))
    redis = RedisServer(tmp).start()
    hub = Hub(url, redis, tmp)
    try:
        hub.manage("migrate", "-v0")
        hub.base_url = f"http://127.0.0.1:{free_port()}"
        daphne(hub, int(hub.base_url.rsplit(":", 1)[1]))
        os.environ.update({k: hub.env[k] for k in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE",
                                                   "FLEET_SIMULATED_APPLY_SECONDS", "DEBUG", "SECRET_KEY",
                                                   "FLEET_CREDENTIALS_KEY")})
        import django

        django.setup()
        from playwright.sync_api import sync_playwright

        from rollouts.roles import VIEWERS, user_create

        on_engine(user_create, username="vera", role=VIEWERS, password=PASSWORD)
        engine = Engine()
        results = []
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            results.append(measure("1 page", browser, hub, engine, args, pages=1, socks=0, gap=args.gap))
            results.append(measure("1 page + 49 WebSocket clients", browser, hub, engine, args, pages=1, socks=49,
                                   gap=args.gap))
            if args.tabs:
                results.append(measure(f"{args.tabs} pages in one Chromium", browser, hub, engine, args,
                                       pages=args.tabs, socks=0, gap=args.pages_gap))
            browser.close()
        report(results, args)
    finally:
        hub.stop_all()
        redis.kill()
        drop()


def report(results: list[dict], args) -> None:
    print(f"runs of {args.members} clusters in one stage, {args.samples} transitions per configuration")
    stages = list(results[0]["stages"])
    print(f"{'viewers':30} {'gap s':>5} {'n':>4} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}  "
          + "  ".join(f"{s + ' p50/p99':>22}" for s in ["render", *stages]) + "  push bytes p50  whole-timeline render p50")
    for r in results:
        print(f"{r['label']:30} {r['gap']:5.1f} {r['n']:4d} {r['p50']:7.1f} {r['p99']:7.1f} {r['max']:7.1f}  "
              + "  ".join(f"{v[0]:10.1f} / {v[1]:<9.1f}" for v in [r["render"], *(r["stages"][s] for s in stages)])
              + f"  {r['bytes']:>14,.0f}  {r['full']:>24.1f}"
              + (f" missed {r['missed']}" if r["missed"] else ""))
    worst = max(r["p99"] for r in results)
    print(f"worst p99 {worst:.1f} ms: {'within' if worst < TARGET_MS else 'OVER'} the {TARGET_MS} ms target")


if __name__ == "__main__":
    main()
