import time, pytest
from rollouts import broadcast, fragment_memory, fragments
from rollouts.selectors.timeline import run_timeline
from rollouts.selectors.history import run_eta
from tests.map_builders import big_run, SUCCEEDED

def best(fn, n=15):
    ts=[]
    for _ in range(n):
        t=time.perf_counter(); r=fn(); ts.append(time.perf_counter()-t)
    return r, min(ts)*1000, sorted(ts)[n//2]*1000

@pytest.mark.django_db
def test_prof(frozen_clock):
    fragment_memory.memory().clear()
    run = big_run(stages=10, per_stage=100, done_stages=5, gate_after=3)
    broadcast.render_run_push(run.KIND, run.pk, ["view"])
    tl, a, b = best(lambda: run_timeline(run)); print("timeline %.1f %.1f" % (a, b))
    _, a, b = best(lambda: run_eta(run)); print("eta %.1f %.1f" % (a, b))
    from rollouts.selectors.pages import run_timeline_context
    ctx = run_timeline_context(run)
    model, a, b = best(lambda: fragments.run_model(ctx)); print("model %.1f %.1f" % (a, b))
    parts, a, b = best(lambda: fragments.render_parts(model, {"rollouts": broadcast.AUDIENCES["view"]})); print("parts %.1f %.1f" % (a, b))
    _, a, b = best(lambda: broadcast.render_run_push(run.KIND, run.pk, ["view"])); print("push %.1f %.1f" % (a, b))
    _, a, b = best(lambda: broadcast.render_run(run.KIND, run.pk, ["view"]), 5); print("full %.1f %.1f" % (a, b))
