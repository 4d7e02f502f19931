"""A push that carries only what changed updates the page in place, as in
production (Redis, PostgreSQL, Daphne; the pushes sent from another process,
as an engine in a Celery worker sends them): Vera watches a run of three
stages of 40 clusters. A cluster finishing changes its cell (the same
element: focus and Tab stop stay) and its stage's head, and nothing replaces
the timeline; the stage's table, once opened, follows. A page that missed a push fetches its whole timeline instead of
applying a delta meant for another version."""

import re

import pytest
from playwright.sync_api import expect

from tests.real_services import celery_hub, free_port

from .test_live_celery import USERS, daphne, signed_in

pytestmark = [pytest.mark.slow, pytest.mark.browser]

RUN = "big"

CREATE = f"""
from tests.map_builders import big_run
big_run({RUN!r}, stages=3, per_stage=40, done_stages=1)
"""

# Cluster m2-<i> finishes (a write bumping the run's version), then the push
# an engine sends after its commit; prints the run's new version.
FINISH = """
import sys
from rollouts import broadcast
from rollouts import models as m
from tests.map_builders import SUCCEEDED
run = m.ClusterStagedUpdateRun.objects.get(name=%r)
status = run.status
status["stagesStatus"][1]["clusters"][int(sys.argv[-1])]["conditions"] = SUCCEEDED
run.status, run.resource_version = status, run.resource_version + 1
run.save()
assert broadcast.push([("run", run.KIND, run.pk)]) == 1
print(run.resource_version)
"""


@pytest.fixture
def hub(tmp_path):
    """PostgreSQL, Redis and Daphne; no engine: the test writes and pushes."""
    with celery_hub(tmp_path) as hub:
        hub.shell(USERS + CREATE)
        hub.base_url = f"http://127.0.0.1:{free_port()}"
        daphne(hub, int(hub.base_url.rsplit(":", 1)[1]))
        yield hub


def finish(hub, cluster: int) -> str:
    """Finish cluster m2-<cluster> and push; the run's new version."""
    code = f"import sys; sys.argv = ['x', '{cluster}']\n" + FINISH % RUN
    return hub.shell(code).strip().splitlines()[-1]


def test_a_partial_push_updates_the_cell_and_the_stage_head_in_place(browser, hub):
    vera = signed_in(browser, hub, "vera")
    vera.goto(f"/runs/{RUN}/")
    expect(vera.locator(".live-status")).to_have_text("Live: changes appear as they happen.")
    timeline = vera.locator("#timeline")
    # The first push to a page's group is its whole timeline (nothing remembered yet).
    expect(timeline).to_have_attribute("data-version", finish(hub, 1))

    vera.evaluate("""() => { window.__sameDocument = true;
        document.getElementById('timeline').dataset.mark = 'kept';
        window.__cell = document.getElementById('cell-2-m2-2'); window.__cell.focus(); }""")
    version = finish(hub, 2)
    expect(timeline).to_have_attribute("data-version", version)
    expect(vera.locator("#cell-2-m2-2")).to_have_class("cell cell-succeeded")
    expect(vera.locator("#cell-2-m2-2")).to_have_attribute("aria-label", re.compile(r"^m2-2: succeeded · started "))
    expect(vera.locator("#stage-2-head .meta")).to_contain_text("2 of 40 clusters")
    expect(vera.locator("#run-progress")).to_have_text("42 of 120 clusters")
    assert vera.evaluate("""() => window.__sameDocument && document.getElementById('timeline').dataset.mark === 'kept'
        && window.__cell === document.getElementById('cell-2-m2-2') && document.activeElement === window.__cell""")

    # The stage's table (40 clusters: loaded when opened) follows its cells' pushes.
    vera.locator("#table-2 summary").click()
    row = vera.locator("#cluster-m2-3")
    expect(row.locator(".state")).to_have_text("updating")
    finish(hub, 3)
    expect(row.locator(".state")).to_have_text("succeeded")
    expect(vera.locator("#table-2")).to_have_attribute("open", "")


def test_a_page_that_missed_a_push_fetches_its_whole_timeline(browser, hub):
    vera = signed_in(browser, hub, "vera")
    vera.goto(f"/runs/{RUN}/")
    expect(vera.locator(".live-status")).to_have_text("Live: changes appear as they happen.")
    timeline = vera.locator("#timeline")
    expect(timeline).to_have_attribute("data-version", finish(hub, 1))  # the whole timeline, remembered

    # As if the page had missed the push before the next one: its version is not the delta's base.
    vera.evaluate("() => { window.__sameDocument = true; document.getElementById('timeline').dataset.version = '1'; }")
    with vera.expect_request(lambda r: r.url.endswith(f"/runs/{RUN}/") and r.headers.get("hx-request")):
        version = finish(hub, 2)
    expect(timeline).to_have_attribute("data-version", version)
    expect(vera.locator("#cell-2-m2-2")).to_have_class("cell cell-succeeded")
    expect(vera.locator("#cell-2-m2-1")).to_have_class("cell cell-succeeded")
    expect(vera.locator("#run-progress")).to_have_text("42 of 120 clusters")
    assert vera.evaluate("() => window.__sameDocument")
