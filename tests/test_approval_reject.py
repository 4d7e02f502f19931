"""Rejecting a gate (service, web, `fleet reject`), and the dashboard's
approval panel under a policy.

Personas: olivia starts the run; rita and sam are release managers in sre;
carol is a release manager outside sre; vera is a viewer.
"""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client

from rollouts import models as m
from rollouts.api.errors import BadRequest
from rollouts.roles import RELEASE_MANAGERS, VIEWERS, user_create
from rollouts.selectors.pages import overview_context
from rollouts.services.approvals import approval_request_approve, approval_request_reject
from tests.fleet_builders import (
    approval_request,
    kind,
    run_obj,
    set_state,
    settle,
    tutorial_waiting_at_canary,
)
from tests.test_approval_policies import GATE, canary, strategy_doc

pytestmark = pytest.mark.django_db

REJECT_URL = f"/approvals/{GATE}/reject/"
DIALOG_URL = f"/approvals/{GATE}/"


def login(name: str, role: str = RELEASE_MANAGERS, *, sre: bool = True) -> Client:
    user, _ = user_create(username=name, role=role)
    if sre:
        user.groups.add(Group.objects.get_or_create(name="sre")[0])
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def people():
    clients = {name: login(name) for name in ("olivia", "rita", "sam")}
    clients["carol"] = login("carol", sre=False)
    clients["vera"] = login("vera", VIEWERS, sre=False)
    return clients


@pytest.fixture
def gated(frozen_clock, people):
    def build(rule: dict | None = None):
        tutorial_waiting_at_canary(strategy_doc(canary(rule) if rule is not None else None))
        return people

    return build


def reject(actor: str = "rita", reason: str = "error rate up on member3", **extra):
    return approval_request_reject(kind=kind("careq"), name=GATE, namespace="", actor=actor, reason=reason, **extra)


# The service ------------------------------------------------------------------------------


def test_rejecting_stops_the_run_and_puts_the_reason_on_its_timeline(gated):
    gated()
    run = reject(client_address="10.0.0.7", via="web")
    assert run.spec["state"] == "Stop"
    rejected = m.Event.objects.get(action="rejected")
    assert (rejected.actor, rejected.object_name, rejected.run, rejected.message) == (
        "rita", GATE, "example-run", "error rate up on member3")
    assert rejected.details == {"stage": "canary", "gate": "after", "client_address": "10.0.0.7", "via": "web"}
    stopped = m.Event.objects.get(action="state-changed")
    assert stopped.actor == "rita" and stopped.details["changes"]["spec.state"] == [None, "Stop"]
    assert stopped.id > rejected.id
    settle()
    assert approval_request(GATE).condition("Approved") is None
    assert run_obj().condition_status("Succeeded") == ""


@pytest.mark.parametrize("reason", ["", "   "])
def test_a_rejection_needs_a_reason(gated, reason):
    gated()
    with pytest.raises(BadRequest, match="rejecting example-run-canary needs a reason"):
        reject(reason=reason)
    assert not m.Event.objects.filter(action="rejected").exists()
    assert run_obj().spec.get("state") != "Stop"


def test_an_approved_gate_cannot_be_rejected(gated):
    gated()
    approval_request_approve(kind=kind("careq"), name=GATE, namespace="", actor="rita")
    with pytest.raises(BadRequest, match="already approved and cannot be rejected"):
        reject()


def test_after_a_rejection_and_a_resume_the_gate_waits_again_and_earlier_votes_are_void(gated):
    gated({"quorum": 2})
    approval_request_approve(kind=kind("careq"), name=GATE, namespace="", actor="sam")
    reject()
    settle()
    set_state("example-run", "Run")
    settle()
    approval_request_approve(kind=kind("careq"), name=GATE, namespace="", actor="rita")
    assert approval_request(GATE).condition("Approved") is None, "sam's vote was cast before the rejection"


def overview_gates() -> list[str]:
    """The states of the approval gates on the overview strip of the one active run."""
    (run,) = overview_context()["runs"]
    return [g.state for g in run.pipeline.items if g.kind == "approval"]


def test_a_rejected_gate_shows_rejected_on_the_overview_strip_until_the_run_is_resumed(gated):
    people = gated()
    assert "waiting for approval" in overview_gates()
    reject()
    settle()
    assert "rejected" in overview_gates()
    assert "pipe-gate gate-approval gate-rejected" in people["vera"].get("/").content.decode()
    set_state("example-run", "Run")
    settle()
    assert "rejected" not in overview_gates() and "waiting for approval" in overview_gates()


# The fleet command -------------------------------------------------------------------------


def test_fleet_reject_stops_the_run(gated, fleet):
    gated()
    assert fleet("--as", "rita", "reject", GATE, "--reason", "wrong snapshot") == (
        0, "clusterapprovalrequest.placement.kubernetes-fleet.io/example-run-canary rejected: "
           "clusterstagedupdaterun.placement.kubernetes-fleet.io/example-run stopped\n", "")
    event = m.Event.objects.get(action="rejected")
    assert (event.actor, event.message, event.details["via"]) == ("rita", "wrong snapshot", "cli")


def test_fleet_reject_without_a_reason_is_a_usage_error(gated, fleet):
    gated()
    code, _, err = fleet("reject", GATE)
    assert code == 2 and "--reason" in err
    code, _, err = fleet("reject", GATE, "--reason", " ")
    assert code == 1 and "needs a reason" in err


# The web ------------------------------------------------------------------------------------


def test_a_release_manager_rejects_from_the_dialog_and_the_timeline_shows_it(gated):
    clients = gated()
    rita = clients["rita"]
    dialog = rita.get(DIALOG_URL, HTTP_HX_REQUEST="true").content.decode()
    assert f'hx-post="{REJECT_URL}"' in dialog and 'name="reason"' in dialog and "required" in dialog
    response = rita.post(REJECT_URL, {"reason": "latency doubled"}, HTTP_HX_REQUEST="true", REMOTE_ADDR="10.1.1.1")
    text = response.content.decode()
    assert response.status_code == 200 and '<section id="timeline"' in text
    assert "example-run-canary rejected: the run is stopping" in text
    assert "Rejected by rita: latency doubled" in text
    assert m.Event.objects.get(action="rejected").details["client_address"] == "10.1.1.1"
    assert run_obj().spec["state"] == "Stop"
    assert "Rejected by rita at" in rita.get(DIALOG_URL).content.decode()


def test_rejecting_without_a_reason_shows_the_error_and_changes_nothing(gated):
    rita = gated()["rita"]
    text = rita.post(REJECT_URL, {"reason": ""}, HTTP_HX_REQUEST="true").content.decode()
    assert "needs a reason" in text
    assert run_obj().spec.get("state") != "Stop"


def test_a_viewer_sees_no_reject_form_and_a_forged_post_gets_403(gated):
    vera = gated()["vera"]
    assert 'name="reason"' not in vera.get(DIALOG_URL).content.decode()
    assert vera.post(REJECT_URL, {"reason": "sneaky"}).status_code == 403
    assert not m.Event.objects.filter(action="rejected").exists()


def test_rejecting_needs_the_csrf_token(gated):
    gated()
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(get_user_model().objects.get(username="rita"))
    assert strict.post(REJECT_URL, {"reason": "no token"}).status_code == 403
    assert not m.Event.objects.filter(action="rejected").exists()


# The approval panel under a policy ----------------------------------------------------------


def test_the_panel_counts_approvals_and_says_whom_it_waits_for(gated):
    clients = gated({"quorum": 3, "groups": ["sre"]})
    for name in ("rita", "sam"):
        clients[name].post(f"/approvals/{GATE}/approve/", {"comment": "ok"})
    panel = clients["olivia"].get(DIALOG_URL).content.decode()
    assert "2 of 3 approvals, waiting for someone from sre" in panel
    assert "quorum 3, group sre" in panel
    timeline = clients["vera"].get("/runs/example-run/").content.decode()
    assert "Approval policy: 2 of 3 approvals, waiting for someone from sre" in timeline


def test_the_approve_button_shows_only_to_someone_who_may_approve(gated):
    clients = gated({"groups": ["sre"], "fourEyes": True})
    approve_form = f'hx-post="/approvals/{GATE}/approve/"'

    def dialog(name):
        return clients[name].get(DIALOG_URL, HTTP_HX_REQUEST="true").content.decode()

    assert approve_form in dialog("rita")
    olivia = dialog("olivia")
    assert approve_form not in olivia
    assert "You may not approve this gate: the person who started the run may not approve it." in olivia
    assert "waiting for a second person" not in olivia  # the group is named instead
    assert "0 of 1 approval, waiting for someone from sre: olivia started the run and may not approve it" in olivia
    assert approve_form not in dialog("carol") and "only members of sre may approve" in dialog("carol")


def test_the_panel_asks_for_a_second_person_under_four_eyes_without_groups(gated):
    clients = gated({"fourEyes": True})
    assert "0 of 1 approval, waiting for a second person: olivia started the run and may not approve it" in (
        clients["vera"].get(DIALOG_URL).content.decode())


def test_a_forged_approval_by_the_starter_is_refused_in_the_page_and_recorded(gated):
    clients = gated({"fourEyes": True})
    response = clients["olivia"].post(f"/approvals/{GATE}/approve/", {"comment": "mine"}, HTTP_HX_REQUEST="true",
                                      REMOTE_ADDR="10.2.2.2")
    assert "olivia may not approve canary: the person who started the run may not approve it" in (
        response.content.decode())
    denied = m.Event.objects.get(action="denied")
    assert (denied.actor, denied.details["client_address"], denied.details["via"]) == ("olivia", "10.2.2.2", "web")


def test_a_vote_below_quorum_is_announced_and_the_panel_names_the_approvers(gated):
    clients = gated({"quorum": 2})
    text = clients["rita"].post(f"/approvals/{GATE}/approve/", {"comment": "ok"}, HTTP_HX_REQUEST="true"
                                ).content.decode()
    assert "Your approval of example-run-canary is recorded: 1 of 2 approvals, waiting for another approver." in text
    clients["sam"].post(f"/approvals/{GATE}/approve/")
    panel = clients["vera"].get(DIALOG_URL).content.decode()
    assert "Already approved by rita, sam" in panel and "2 of 2 approvals: rita, sam" in panel



def test_a_rejected_gate_of_a_stopped_run_cannot_be_approved_until_the_run_resumes(gated):
    """Neither `fleet approve` nor a hand-made POST undoes a rejection behind
    everyone's back: the run is resumed first, then the gate is approved."""
    people = gated()
    reject()
    settle()
    with pytest.raises(BadRequest, match="rejected by rita and its run example-run is stopped: resume"):
        approval_request_approve(kind=kind("careq"), name=GATE, namespace="", actor="sam")
    page = people["sam"].post(f"/approvals/{GATE}/approve/", {"comment": "ship it"}, follow=True).content.decode()
    assert "rejected by rita" in page
    assert approval_request(GATE).condition("Approved") is None
    set_state("example-run", "Run")
    settle()
    approval_request_approve(kind=kind("careq"), name=GATE, namespace="", actor="sam")
    assert approval_request(GATE).condition_status("Approved") == "True"
