"""A rejected gate reads the same everywhere (the run page's task, the
dialog, the sentence, the inbox, the notice), and Stop asks first and says
what a stopping run still waits for (issue 15, items 3 and 6).

Personas: rita is a release manager; vera is a viewer.
"""

import re

import pytest

from rollouts import selectors
from rollouts.roles import RELEASE_MANAGERS, VIEWERS
from rollouts.services.approvals import approval_request_reject
from tests.fleet_builders import (
    SIMULATE_FAILURE,
    advance,
    kind,
    run,
    run_obj,
    set_state,
    settle,
    signed_in,
    stage,
    staged_fleet,
    strategy,
    tutorial_waiting_at_canary,
)

pytestmark = pytest.mark.django_db

GATE = "example-run-canary"


@pytest.fixture
def rita():
    return signed_in("rita", RELEASE_MANAGERS)


@pytest.fixture
def vera():
    return signed_in("vera", VIEWERS)


@pytest.fixture
def rejected(frozen_clock):
    """The tutorial run waiting at canary's gate, rejected by rita, settled (stopped)."""
    tutorial_waiting_at_canary()
    approval_request_reject(kind=kind("careq"), name=GATE, namespace="", actor="rita", reason="error rate up")
    settle()


def gate_task():
    return selectors.run_timeline(run_obj()).stages[1].after[0]


# The gate, the sentence, the dialog -------------------------------------------------------


def test_a_rejected_gate_reads_rejected_by_its_author_with_the_reason_and_cannot_be_approved(rejected):
    task = gate_task()
    assert (task.state, task.rejected, task.can_approve) == ("rejected", "rejected by rita: error rate up", False)


def test_the_run_page_shows_the_rejection_in_red_without_an_approve_button(rejected, rita):
    page = rita.get("/runs/example-run/").content.decode()
    assert '<span class="state state-rejected">rejected</span>' in page
    assert '<p class="rejected">Rejected by rita: error rate up</p>' in page
    assert "Approve…" not in page
    assert 'class="sentence sentence-rejected"' in page


def test_the_sentence_of_a_run_stopped_by_a_rejection_names_who_and_why(rejected):
    assert selectors.run_timeline(run_obj()).sentence == (
        "The run is stopped at stage canary: rita rejected the approval of example-run-canary: “error rate up”. "
        "Resume sets its state back to Run and it waits at this gate again.")


def test_the_sentence_of_a_run_stopping_after_a_rejection_says_nothing_is_left_to_finish(frozen_clock):
    tutorial_waiting_at_canary()
    approval_request_reject(kind=kind("careq"), name=GATE, namespace="", actor="rita", reason="error rate up")
    assert selectors.run_timeline(run_obj()).sentence.startswith(
        "The run is stopping after rita rejected the approval of example-run-canary: “error rate up”: "
        "no cluster of stage canary is still updating")


def test_the_dialog_of_a_rejected_gate_says_so_and_offers_neither_approve_nor_reject(rejected, rita):
    dialog = rita.get(f"/approvals/{GATE}/", HTTP_HX_REQUEST="true").content.decode()
    assert f"{GATE}: rejected" in dialog and "Rejected by rita at" in dialog and "“error rate up”" in dialog
    assert 'class="notice notice-rejected"' in dialog
    assert f'/approvals/{GATE}/approve/"' not in dialog and 'name="reason"' not in dialog


def test_after_a_resume_the_gate_waits_again_and_can_be_approved(rejected, rita):
    set_state("example-run", "Run")
    settle()
    task = gate_task()
    assert (task.state, task.can_approve) == ("waiting for approval", True)
    page = rita.get("/runs/example-run/").content.decode()
    assert "Approve…" in page and "(the run was resumed since: the gate waits again)" in page
    dialog = rita.get(f"/approvals/{GATE}/", HTTP_HX_REQUEST="true").content.decode()
    assert f'hx-post="/approvals/{GATE}/approve/"' in dialog and "The run was resumed since" in dialog


# The inbox ---------------------------------------------------------------------------------


def test_the_inbox_drops_a_rejected_request_and_takes_it_back_once_the_run_is_resumed(rejected, vera):
    assert selectors.approvals_pending() == []
    assert "Nothing is waiting for approval." in vera.get("/").content.decode()
    set_state("example-run", "Run")
    settle()
    assert [r.name for r in selectors.approvals_pending()] == [GATE]


def test_the_approval_list_marks_a_rejected_request_and_offers_details_not_review(rejected, vera):
    [row] = selectors.approval_list()
    assert (row.state, row.rejected) == ("rejected", True)
    page = vera.get("/approvals/").content.decode()
    assert '<span class="state state-rejected">rejected</span>' in page
    assert ">Details<" in page and ">Review<" not in page


def test_a_stopped_run_without_a_rejection_still_lists_its_gate(frozen_clock):
    tutorial_waiting_at_canary()
    set_state("example-run", "Stop")
    settle()
    assert [r.name for r in selectors.approvals_pending()] == [GATE]


def test_the_inbox_reads_decisions_without_a_query_per_request(frozen_clock, django_assert_num_queries):
    tutorial_waiting_at_canary()
    approval_request_reject(kind=kind("careq"), name=GATE, namespace="", actor="rita", reason="error rate up")
    for name in ("second", "third"):
        run(name)
        settle()
    advance(61)
    settle()
    # cluster-scoped: the active runs with their state, their requests each
    # with its latest decision (a subquery); namespaced: the active runs
    # (none, so no request query): 3, however many requests.
    with django_assert_num_queries(3):
        pending = selectors.approvals_pending()
    assert [r.name for r in pending] == ["second-canary", "third-canary"]


# Notices are coloured by what they say ---------------------------------------------------------


def test_the_rejected_notice_is_red_not_green(frozen_clock, rita):
    tutorial_waiting_at_canary()
    text = rita.post(f"/approvals/{GATE}/reject/", {"reason": "latency"}, HTTP_HX_REQUEST="true").content.decode()
    assert '<p class="notice notice-rejected" role="status">example-run-canary rejected' in text
    assert "notice-success" not in text


def test_a_stop_request_is_amber_and_an_approval_green(frozen_clock, rita):
    tutorial_waiting_at_canary()
    text = rita.post(f"/approvals/{GATE}/approve/", HTTP_HX_REQUEST="true").content.decode()
    assert 'class="notice notice-success"' in text
    tutorial_run_2 = "example-run-2"
    run(tutorial_run_2)
    settle()
    text = rita.post(f"/runs/{tutorial_run_2}/stop/", HTTP_HX_REQUEST="true").content.decode()
    assert f'<p class="notice notice-warning" role="status">Stop requested for {tutorial_run_2}' in text


def test_the_stylesheet_colours_notices_and_states_semantically():
    from pathlib import Path

    css = (Path(__file__).resolve().parent.parent / "static" / "fleetui.css").read_text()
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)

    def colour_of(selector: str) -> str:
        rule = next(r for r in re.findall(r"([^{}]+)\{([^}]*)\}", css)
                    if selector in [s.strip() for s in r[0].split(",")])
        return rule[1]

    # Red for rejection and errors, green for success, amber for waiting
    # (the colours themselves, both themes: tests/test_theme_contrast.py).
    assert "var(--note-bad)" in colour_of(".notice-rejected") and "var(--note-bad)" in colour_of(".notice-error")
    assert "var(--state-rejected)" in colour_of(".state-rejected")
    assert "var(--note-ok)" in colour_of(".notice-success")
    assert "var(--note-ok)" not in colour_of(".notice-warning") and "var(--note-info)" not in colour_of(".notice-warning")
    assert "var(--state-waiting)" in colour_of(".state-waiting")


# Stop asks first, and says what a stopping run waits for ----------------------------------------


@pytest.fixture
def failing_member(frozen_clock):
    """member2 alone in stage staging, failing every apply: it stays updating."""
    staged_fleet({"staging": ["member2"], "canary": ["member1"]}, labels={"member2": {SIMULATE_FAILURE: "true"}})
    strategy("example-strategy", stage("staging"), stage("canary"))
    run()
    settle()


def test_the_stop_button_opens_a_confirmation_instead_of_stopping(failing_member, rita):
    page = rita.get("/runs/example-run/").content.decode()
    assert 'hx-get="/runs/example-run/stop/" hx-target="#dialog"' in page and "Stop…" in page
    assert 'hx-post="/runs/example-run/stop/"' not in page
    dialog = rita.get("/runs/example-run/stop/", HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-post="/runs/example-run/stop/"' in dialog and "data-close-dialog" in dialog
    assert re.search(r"member2 \(updating since <time[^>]*>\d\d:\d\d</time> UTC\)", dialog)
    assert "Nothing new starts" in dialog
    assert run_obj().spec.get("state") is None, "asking changes nothing"


def test_the_stop_confirmation_is_a_page_of_its_own_without_script(failing_member, rita):
    page = rita.get("/runs/example-run/stop/").content.decode()
    assert '<form method="post" action="/runs/example-run/stop/">' in page and "csrfmiddlewaretoken" in page
    assert 'href="/runs/example-run/">Cancel</a>' in page


def test_a_viewer_cannot_open_the_stop_confirmation(failing_member, vera):
    assert vera.get("/runs/example-run/stop/").status_code == 403


def test_a_stopping_run_names_the_clusters_it_waits_for_and_since_when(failing_member):
    started = selectors.run_timeline(run_obj()).stages[0].clusters[0].started
    set_state("example-run", "Stop")
    settle()
    timeline = selectors.run_timeline(run_obj())
    assert timeline.state == selectors.RunState.STOPPING
    assert [c.name for c in timeline.in_flight] == ["member2"]
    assert timeline.sentence == (
        f"The run is stopping: waiting for member2 (updating since {started:%H:%M} UTC) in stage staging to "
        "finish; nothing new starts. Clusters already updating finish first, then the run reports stopped.")


def test_a_run_stopping_on_a_stuck_cluster_says_it_stays_stopping_until_the_cluster_reports(failing_member):
    set_state("example-run", "Stop")
    settle()
    advance(6 * 60)
    settle()
    timeline = selectors.run_timeline(run_obj())
    started = timeline.stages[0].clusters[0].started
    assert timeline.sentence.startswith(
        f"The run is stopping: waiting for member2 (updating since {started:%H:%M} UTC, stuck) in stage staging")
    assert timeline.sentence.endswith("A stuck cluster keeps the run stopping until it reports: fix it, or Resume.")
