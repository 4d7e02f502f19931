"""A placement's history, the ETA on the run page and the overview, and the
time view, through the selectors and the test client with query budgets.

    olivia  applies the fleet and starts runs (tests/fleet_builders.py)
    alice   approves the canary gate
    vera    a viewer reading the pages

The tutorial's fleet: staging (member2, then a 1m TimedWait), canary
(member3, member1, then an Approval); each simulated apply takes 30 s.
"""

import pytest
from django.urls import reverse

from rollouts.roles import VIEWERS
from rollouts.selectors import history
from rollouts.selectors.history import placement_history, run_eta
from tests.fleet_builders import (
    approve,
    placement,
    run,
    run_obj,
    set_state,
    signed_in,
    tick,
    tutorial_fleet,
    tutorial_run,
    tutorial_strategy,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def slow_applies(frozen_clock, settings):
    settings.FLEET_SIMULATED_APPLY_SECONDS = 30
    tutorial_fleet()
    tutorial_strategy()


def drive(seconds: int, step: int = 5) -> None:
    tick(seconds // step, step=step)


def finish(name: str, index: str = "1", *, approver: str = "alice") -> None:
    """Run `name` through to the end: its canary gate approved by `approver`."""
    tutorial_run(name=name, index=index)
    drive(200)
    approve(f"{name}-canary", actor=approver)
    drive(20)
    assert not run_obj(name).active


@pytest.fixture
def fleet_cli(slow_applies, fleet):
    """The `fleet` command runner (tests/conftest.py), on the tutorial's fleet."""
    return fleet


@pytest.fixture
def vera():
    return signed_in("vera", VIEWERS)


def test_the_first_run_of_a_placement_has_no_estimate_yet(slow_applies, vera):
    tutorial_run()
    drive(10)
    assert run_eta(run_obj()).text == "no estimate yet"
    assert "no estimate yet" in vera.get("/runs/example-run/").content.decode()


def test_the_next_run_is_estimated_from_the_last_one_plus_its_approval(slow_applies, vera):
    finish("first")
    tutorial_run(name="second", index="0")  # back to snapshot 0: every cluster applies again
    drive(10)
    eta = run_eta(run_obj("second"))
    # staging's cluster (30 s, 10 s gone: 20) + its 1m wait + canary's two clusters (one at a time): 140 s
    assert (eta.seconds, eta.gates) == (140, ("canary",))
    assert "about 2 min left, plus the canary approval" in vera.get("/runs/second/").content.decode()
    assert "about 2 min left, plus the canary approval" in vera.get("/").content.decode()


def test_the_eta_reads_the_past_runs_again_only_when_they_change(slow_applies, django_assert_num_queries):
    finish("first")
    tutorial_run(name="second", index="0")
    drive(10)
    second = run_obj("second")
    eta = run_eta(second)  # learns from "first" and remembers it under the mark of the placement's finished runs
    with django_assert_num_queries(1):  # the mark
        assert run_eta(second) == eta
    run_obj("first").delete()  # the past runs changed: so did the mark, and the ETA reads them again
    assert run_eta(second).text == "no estimate yet"


def test_a_stopped_run_says_why_it_has_no_estimate(slow_applies):
    finish("first")
    tutorial_run(name="second", index="0")
    drive(10)
    set_state("second", "Stop")
    drive(60)
    assert run_eta(run_obj("second")).text == "no estimate while stopped"


def test_the_history_lists_runs_newest_first_with_rollbacks_and_approvers(slow_applies, vera):
    finish("first")
    finish("second", index="0", approver="rita")
    rows = placement_history(name="example-placement").rows
    assert [(r.run.name, r.run.snapshot_index, r.rollback) for r in rows] == [("second", "0", True),
                                                                              ("first", "1", False)]
    assert [(g.stage, g.approvers) for g in rows[0].gates] == [("canary", ["rita"])]
    assert rows[0].record.outcome == "succeeded" and rows[0].record.seconds > 0
    page = vera.get("/placements/example-placement/history/").content.decode()
    assert page.count('class="rollback-mark"') == 1 and "canary (after): rita" in page
    assert "/placements/example-placement/history/" in vera.get("/placements/example-placement/").content.decode()


def test_a_stage_much_slower_than_usual_is_flagged(slow_applies, settings):
    finish("first")
    finish("second", index="0")
    settings.FLEET_SIMULATED_APPLY_SECONDS = 300
    tutorial_run(name="third")
    drive(1500, step=15)
    approve("third-canary")
    drive(30)
    third = placement_history(name="example-placement").rows[0]
    assert third.run.name == "third"
    assert [s.stage for s in third.slow] == ["staging", "canary"]


def test_the_time_view_draws_a_finished_run_and_compares_its_stages(slow_applies, vera):
    finish("first")
    finish("second", index="0")
    page = vera.get("/runs/second/time/").content.decode()
    assert page.count('class="bar-succeeded"') == 3 + 1  # three clusters, and the legend's swatch
    assert 'class="now-line" data-now' not in page
    assert "waited" in page and "approved by alice" in page
    assert "<td>60s vs 60s (median of 1 earlier run)</td>" in page  # canary


def test_the_time_view_of_a_moving_run_has_a_now_line_and_refreshes(slow_applies, vera, settings):
    settings.FLEET_DASHBOARD_POLL_SECONDS = 5
    tutorial_run()
    drive(10)
    page = vera.get("/runs/example-run/time/").content.decode()
    assert 'class="now-line" data-now' in page and 'hx-trigger="every 5s"' in page
    partial = vera.get("/runs/example-run/time/", headers={"HX-Request": "true"}).content.decode()
    assert partial.lstrip().startswith('<section id="time-view"')


def test_unknown_runs_and_placements_are_not_found(slow_applies, vera):
    assert vera.get("/runs/nope/time/").status_code == 404
    assert vera.get("/placements/nope/history/").status_code == 404


# Query budgets: the same for 1 or 20 runs ---------------------------------------------


def many_runs(count: int) -> None:
    """One finished run, then `count - 1` more (not started) on two placements."""
    finish("run-0")
    placement("other-placement")
    for i in range(1, count):
        run(f"run-{i}", placement_name="example-placement" if i % 2 else "other-placement")


@pytest.mark.parametrize("count", [1, 20])
def test_the_history_page_costs_the_same_queries_for_1_or_20_runs(slow_applies, vera, django_assert_max_num_queries,
                                                                   count):
    many_runs(count)
    # session, user, the placement, the runs (one window query), their hubs,
    # the approval Events, the active runs' ETAs (the marks of their
    # placements' finished runs, then those runs), the user's and the group's
    # permissions, the user's groups, the freezes holding now (the banner),
    # the nav's count of waiting gates (one per family): 14.
    with django_assert_max_num_queries(14):
        response = vera.get(reverse("rollouts:placement-history", args=["example-placement"]))
    assert response.status_code == 200


@pytest.mark.parametrize("count", [1, 20])
def test_the_overview_estimates_every_active_run_in_one_query(slow_applies, django_assert_max_num_queries, count):
    many_runs(count)
    runs = [run_obj(f"run-{i}") for i in range(1, count)]
    # The mark of each placement's finished runs, then the newest of those
    # runs (one window query).
    with django_assert_max_num_queries(2):
        etas = history.run_etas(runs)
    assert len(etas) == count - 1
    with django_assert_max_num_queries(1):  # the marks did not change: what the past runs taught is kept
        assert history.run_etas(runs) == etas


@pytest.mark.parametrize("count", [1, 20])
def test_the_time_view_costs_the_same_queries_for_1_or_20_runs(slow_applies, vera, django_assert_max_num_queries, count):
    many_runs(count)
    # session, user, the run, the approval Events, the previous runs,
    # permissions (user, group), the user's groups, the freezes holding now
    # (the banner), the nav's count of waiting gates (one per family): 11.
    with django_assert_max_num_queries(11):
        assert vera.get("/runs/run-0/time/").status_code == 200


# The fleet command ------------------------------------------------------------------------


def test_fleet_history_prints_the_runs_with_the_rollback_and_the_approver(fleet_cli):
    finish("first")
    finish("second", index="0", approver="rita")
    code, out, err = fleet_cli("history", "example-placement")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["RUN", "SNAPSHOT", "OUTCOME"]
    assert lines[1].startswith("second") and "0 (rollback)" in lines[1] and "canary: rita" in lines[1]
    assert lines[2].startswith("first") and "rollback" not in lines[2] and "canary: alice" in lines[2]


def test_fleet_history_of_an_unknown_placement_says_not_found(fleet_cli):
    code, out, err = fleet_cli("history", "nope")
    assert code == 1 and 'placement "nope" not found' in err
