"""The pipeline strip and the cluster map (issue 16): what they show, from
the run page's Timeline and from a run's status alone (the overview), and
the query budgets of the pages that show them."""

import re

import pytest

from rollouts import clock
from rollouts.roles import RELEASE_MANAGERS, VIEWERS
from rollouts.selectors.pipeline import (
    CellState,
    cell_state,
    stage_cells,
    status_pipeline,
    timeline_pipeline,
)
from rollouts.selectors.timeline import ClusterView, StageView, run_timeline
from tests.fleet_builders import (
    advance,
    run_obj,
    settle,
    signed_in,
    tutorial_fleet,
    tutorial_run,
    tutorial_strategy,
)
from tests.map_builders import big_run

pytestmark = pytest.mark.django_db


def shape(pipeline) -> list[tuple]:
    return [(s.anchor, s.name, s.state, s.done, s.total, [(g.kind, g.state, g.remaining) for g in s.before + s.after])
            for s in pipeline.stages]


@pytest.fixture
def in_timed_wait(frozen_clock):
    """The tutorial's run 15 seconds into staging's one-minute TimedWait."""
    tutorial_fleet()
    tutorial_strategy()
    tutorial_run()
    settle()
    advance(15)
    return run_obj()


def test_the_strip_shows_each_stage_its_gates_and_the_deletion_stage_last(in_timed_wait):
    pipeline = timeline_pipeline(run_timeline(in_timed_wait))
    remaining = pipeline.stages[0].after[0].remaining
    assert 40 <= remaining <= 60  # settle() moved the clock a few seconds into the wait
    assert shape(pipeline) == [
        ("stage-1", "staging", "waiting", 1, 1, [("wait", "waiting", remaining)]),
        ("stage-2", "canary", "not started", 0, 2, [("approval", "not requested yet", None)]),
        ("stage-deletion", "kubernetes-fleet.io/deleteStage", "not started", 0, 0, []),
    ]
    assert pipeline.stages[-1].is_deletion
    assert pipeline.stages[0].after[0].text == "wait 1m"


def test_the_overview_strip_from_the_status_alone_agrees_with_the_run_page(in_timed_wait):
    run = in_timed_wait
    assert shape(status_pipeline(run.status, clock.now())) == shape(timeline_pipeline(run_timeline(run)))
    advance(61)
    settle()  # past the wait, waiting at the canary approval
    run = run_obj()
    overview, page = status_pipeline(run.status, clock.now()), timeline_pipeline(run_timeline(run))
    assert shape(overview) == shape(page)
    assert [(g.state, g.short) for g in overview.stages[1].after] == [("waiting for approval", "waiting")]
    assert [(g.state, g.short) for g in overview.stages[0].after] == [("elapsed", "elapsed")]


def test_the_strip_counts_done_and_failing_clusters_of_a_1000_cluster_run(frozen_clock):
    run = big_run(failing=2, gate_after=6)
    strip = status_pipeline(run.status, clock.now(), failing={"m7-5"})  # a member reports m7-5 failing
    stage6, stage7, stage8 = strip.stages[5:8]
    assert (stage6.state, stage6.done, stage6.total, stage6.after[0].state) == (
        "succeeded", 100, 100, "waiting for approval")
    assert (stage7.state, stage7.done, stage7.total, stage7.failing) == ("updating", 0, 100, 2)
    assert (stage8.state, stage8.failing) == ("not started", 0)
    assert strip.failing == 2  # m7-5 is pending, not started: a member's report does not make it failing
    assert timeline_pipeline(run_timeline(run)).failing == 2


@pytest.mark.parametrize(("state", "failure", "deletion", "expected"), [
    pytest.param("pending", False, False, CellState.PENDING, id="pending"),
    pytest.param("updating", False, False, CellState.UPDATING, id="updating"),
    pytest.param("updating", True, False, CellState.FAILING, id="updating-with-a-failure-reported"),
    pytest.param("failing", True, False, CellState.FAILING, id="failing"),
    pytest.param("failed", False, False, CellState.FAILING, id="failed"),
    pytest.param("succeeded", False, False, CellState.SUCCEEDED, id="succeeded"),
    pytest.param("succeeded", False, True, CellState.REMOVED, id="removed-by-the-deletion-stage"),
    pytest.param("updating", False, True, CellState.UPDATING, id="being-removed"),
])
def test_a_cluster_state_maps_to_a_cell_state(state, failure, deletion, expected):
    assert cell_state(state, failure=failure, deletion=deletion) == expected


def test_a_cell_has_a_stable_id_and_names_its_cluster_state_times_and_reason():
    now = clock.parse_rfc3339("2026-03-02T21:20:05Z")
    clusters = [ClusterView("member1", "failed", now, now, "0s", "ApplyFailed: quota exceeded"),
                ClusterView("member2", "updating", now, None, "", "", pending="Available: 1/3 replicas ready"),
                ClusterView("member3", "pending", None, None, "", "")]
    cells = stage_cells(StageView("canary", "updating", now, None, "", clusters), 2)
    assert [(c.id, c.state) for c in cells] == [("cell-2-member1", "failing"), ("cell-2-member2", "updating"),
                                                ("cell-2-member3", "pending")]
    assert cells[0].label == "member1: failed · started 21:20:05 · ended 21:20:05 (0s) · ApplyFailed: quota exceeded"
    assert cells[1].label == "member2: updating · started 21:20:05 · Available: 1/3 replicas ready"
    assert cells[2].label == "member3: pending"
    gone = stage_cells(StageView("d", "succeeded", now, now, "", [ClusterView("old", "succeeded", now, now, "0s", "")],
                                 is_deletion=True), "deletion")
    assert [(c.id, c.state) for c in gone] == [("cell-deletion-old", CellState.REMOVED)]


# The pages ------------------------------------------------------------------------------------


def test_the_run_page_draws_a_cell_per_cluster_folds_finished_and_pending_tables_and_has_a_legend(frozen_clock):
    big_run(failing=2, deletion=3)
    page = signed_in("vera", VIEWERS).get("/runs/big/").content.decode()
    assert len(re.findall(r'<span class="cell cell-\w+" id="cell-\d+-m\d+-\d+" role="img" tabindex="-?[01]"', page)) == 1000
    assert page.count('class="cell cell-failing" id="cell-7-') == 2
    assert 'id="cell-7-m7-0" role="img" tabindex="0" aria-label="m7-0: failed · started' in page
    assert len(re.findall(r'id="cell-deletion-gone-\d" role="img"', page)) == 3
    # 100 clusters a stage: maps only, each table loaded when opened.
    assert re.findall(r'<details class="cluster-table" id="table-(\d+)" hx-get="\?table=\1" hx-trigger="toggle once"',
                      page) == [str(n) for n in range(1, 11)]
    assert "<td>m7-0</td>" not in page
    assert all(f'id="stage-{n}-head"' in page for n in range(1, 11))
    for state in CellState:
        assert f'<span class="cell cell-{state.value}" aria-hidden="true"></span>{state.label}</li>' in page
    assert 'Only failing clusters <span id="failing-count">(2)</span>' in page
    assert '<a href="#stage-7">' in page  # the strip links to the stage


def test_a_big_stage_table_loads_when_opened_or_opens_in_the_page_without_script(frozen_clock):
    big_run(failing=2)
    vera = signed_in("vera", VIEWERS)
    table = vera.get("/runs/big/", {"table": "7"}, headers={"HX-Request": "true"}).content.decode()
    assert table.startswith('<table class="clusters">') and table.count('<tr id="cluster-') == 100
    assert table.count('class="row-failing">') == 2
    page = vera.get("/runs/big/", {"table": "7"}).content.decode()
    assert '<details class="cluster-table" id="table-7" open>' in page and page.count("<td>m7-") == 100
    assert page.count("<td>m6-") == 0  # the other big stages still load theirs when opened
    assert vera.get("/runs/big/", {"table": "11"}, headers={"HX-Request": "true"}).status_code == 404
    assert vera.get("/runs/big/", {"table": "x"}).status_code == 200  # not a number: the page as usual


def test_only_the_table_of_a_small_stage_being_updated_stays_open(frozen_clock):
    big_run(per_stage=20)
    page = signed_in("vera", VIEWERS).get("/runs/big/").content.decode()
    tables = dict(re.findall(r'<details class="cluster-table" id="table-(\d+)"( open)?>', page))
    assert [n for n, opened in tables.items() if opened] == ["7"]


@pytest.mark.parametrize("clusters", [20, 1000])  # 20: one cluster of the current stage updating
def test_the_run_page_with_the_map_keeps_its_query_budget(django_assert_num_queries, frozen_clock, clusters):
    big_run(per_stage=clusters // 10, gate_after=6)
    rita = signed_in("rita", RELEASE_MANAGERS)
    # The 17 of test_views_audit's run page budget: the strip and the map
    # read only what the timeline loaded.
    with django_assert_num_queries(17):
        page = rita.get("/runs/big/").content.decode()
    assert page.count('role="img" tabindex="-1"') == clusters - 10  # one Tab stop a stage


@pytest.mark.parametrize("runs", [1, 12])
def test_the_overview_shows_a_strip_per_active_run_within_its_query_budget(django_assert_num_queries, frozen_clock,
                                                                           runs):
    for i in range(runs):
        big_run(f"run{i}", per_stage=100, gate_after=6)
    vera = signed_in("vera", VIEWERS)
    # The overview's 18 of test_views_audit: no query per run for its strip.
    with django_assert_num_queries(18):
        page = vera.get("/").content.decode()
    assert page.count('<ol class="pipeline"') == runs
    assert page.count('<a href="/runs/run0/#stage-7">') == 1
    assert page.count("approval: waiting</li>") == runs
