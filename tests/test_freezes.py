"""Freezes as people use them (services.freezes, services.approvals): declared
with clear errors, audited, published once per transition; a frozen gate
refuses approval; break-glass needs a reason and a second, different person;
ending a freeze resumes every run within one engine pass.

Personas: "ada" (admin) declares freezes, "olivia" runs rollouts, "alice" and
"bob" approve gates. The fleet is the tutorial's (tests/fleet_builders.py).
"""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from rollouts import changes, clock
from rollouts import models as m
from rollouts.api.errors import BadRequest
from rollouts.engine.loop import engine_tick
from rollouts.services.approvals import Frozen, approval_break_glass, approval_request_approve
from rollouts.services.freezes import FreezeInvalid, freeze_create, freeze_end, freezes_sync
from tests.fleet_builders import (
    condition,
    conditions,
    kind,
    run_conditions,
    settle,
    stage_status,
    status,
    tutorial_fleet,
    tutorial_run,
    tutorial_strategy,
    tutorial_waiting_at_canary,
)

pytestmark = pytest.mark.django_db
GATE = "example-run-canary"


@pytest.fixture
def published(monkeypatch):
    """The FreezeChanged events published, in order (delivered as usual)."""
    seen, publish = [], changes.publish

    def record(event, **kwargs):
        if isinstance(event, changes.FreezeChanged):
            seen.append(event)
        publish(event, **kwargs)

    monkeypatch.setattr(changes, "publish", record)
    return seen


def declare(name="xmas", reason="holidays", **fields):
    return freeze_create(name=name, reason=reason, actor="ada", **fields)


def freeze_events(name="xmas"):
    return list(m.Event.objects.filter(object_kind="Freeze", object_name=name).order_by("pk")
                .values_list("reason", "actor"))


# Declaring and ending -------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields,field",
    [
        pytest.param({"name": "Xmas Freeze"}, "name", id="a-name-with-spaces"),
        pytest.param({"reason": "  "}, "reason", id="no-reason"),
        pytest.param({"ends_at": "past"}, "ends_at", id="an-end-in-the-past"),
        pytest.param({"windows": "weekends"}, "windows", id="unreadable-windows"),
        pytest.param({"windows": "Sat 00:00-Mon 06:00", "time_zone": "Berlin"}, "time_zone", id="unknown-zone"),
        pytest.param({"selector": "env in (prod"}, "selector", id="unreadable-selector"),
    ],
)
def test_a_freeze_that_cannot_be_declared_is_refused_naming_the_field(frozen_clock, fields, field):
    if fields.get("ends_at") == "past":
        fields["ends_at"] = clock.now() - timedelta(hours=1)
    with pytest.raises(FreezeInvalid) as refused:
        declare(**fields)
    assert refused.value.field == field and str(refused.value).startswith(f"{field}: ")
    assert not m.Freeze.objects.exists()


def test_a_name_is_never_reused(frozen_clock):
    declare()
    with pytest.raises(FreezeInvalid, match="name: a freeze named 'xmas' exists already"):
        declare()


def test_declaring_and_ending_are_audited_and_published(frozen_clock, published):
    declare(ends_at=clock.now() + timedelta(days=2))
    freeze_end(name="xmas", actor="ada", via="cli")
    assert published == [changes.FreezeChanged("xmas", True), changes.FreezeChanged("xmas", False)]
    assert freeze_events() == [("FreezeDeclared", "ada"), ("FreezeEnded", "ada")]
    with pytest.raises(BadRequest, match="was ended already, by ada"):
        freeze_end(name="xmas", actor="ada")


def test_a_recurring_window_opening_and_closing_is_published_once_each(frozen_clock, published):
    # TUTORIAL_START is Monday 2 March 2026, 21:27 UTC (22:27 in Berlin).
    declare(windows="Mon 23:00-Tue 01:00", time_zone="Europe/Berlin")
    assert published == [changes.FreezeChanged("xmas", False)]
    assert freezes_sync() == 33 * 60  # until 23:00 Berlin
    clock.advance(33 * 60)
    freezes_sync()
    freezes_sync()  # a second loop, or a second beat worker, sees nothing new
    clock.advance(2 * 3600)
    freezes_sync()
    assert published[1:] == [changes.FreezeChanged("xmas", True), changes.FreezeChanged("xmas", False)]
    assert [r for r, _ in freeze_events()] == ["FreezeDeclared", "FreezeWindowOpened", "FreezeWindowClosed"]


def test_a_freeze_reaching_its_end_stops_holding_by_itself(frozen_clock, published):
    declare(ends_at=clock.now() + timedelta(minutes=10))
    clock.advance(600)
    freezes_sync()
    assert published[-1] == changes.FreezeChanged("xmas", False)
    assert freeze_events()[-1] == ("FreezeExpired", "system:freeze")


# The engine ----------------------------------------------------------------------------


def test_a_new_run_waits_during_a_freeze_and_resumes_within_one_pass_after_it_ends(frozen_clock):
    tutorial_fleet()
    tutorial_strategy()
    declare()
    tutorial_run()
    settle()
    assert run_conditions()["Progressing"] == ("False", "UpdateRunFrozen")
    assert condition(status(), "Progressing")["message"] == "Frozen by ada (freeze xmas): holidays, until it is ended"
    assert not m.ClusterResourceBinding.objects.filter(spec__state="Bound").exists()
    assert m.Event.objects.filter(run="example-run", reason="UpdateRunFrozen").exists()  # on the run's timeline

    freeze_end(name="xmas", actor="ada")
    engine_tick()
    assert m.ClusterResourceBinding.objects.filter(spec__state="Bound").count() == 1
    assert run_conditions()["Progressing"] == ("True", "UpdateRunProgressing")


def test_a_freeze_on_other_placements_holds_nothing_here(frozen_clock):
    tutorial_fleet()
    tutorial_strategy()
    declare(selector="env=prod")
    tutorial_run()
    settle()
    assert run_conditions()["Progressing"][1] != "UpdateRunFrozen"


def test_a_tick_reads_the_freezes_once_however_many_runs(frozen_clock):
    tutorial_fleet()
    tutorial_strategy()
    declare()
    for name in ("run-a", "run-b", "run-c"):
        tutorial_run(name)
    settle()
    with CaptureQueriesContext(connection) as queries:
        engine_tick()
    freeze_reads = [q for q in queries.captured_queries if 'FROM "rollouts_freeze"' in q["sql"]]
    assert len(freeze_reads) == 2  # the transitions (freezes_sync) and what holds now, for every run


# Approvals and break-glass -----------------------------------------------------------------


@pytest.fixture
def waiting_at_canary_frozen(frozen_clock):
    tutorial_waiting_at_canary()
    declare()
    settle()


def approve(actor):
    return approval_request_approve(kind=kind("careq"), name=GATE, namespace="", actor=actor, via="cli")


def break_glass(actor, reason=""):
    return approval_break_glass(kind=kind("careq"), name=GATE, namespace="", actor=actor, reason=reason, via="web")


def gate_approved() -> bool:
    return m.ClusterApprovalRequest.objects.get(name=GATE).condition_status("Approved") == "True"


def test_an_approval_during_a_freeze_is_refused_and_audited(waiting_at_canary_frozen):
    with pytest.raises(Frozen, match="cannot be approved during a freeze. Frozen by ada"):
        approve("alice")
    assert not gate_approved()
    denied = m.Event.objects.get(action=m.Event.Action.DENIED)
    assert (denied.actor, denied.run, denied.object_name) == ("alice", "example-run", GATE)


def test_break_glass_needs_a_reason(waiting_at_canary_frozen):
    with pytest.raises(BadRequest, match="reason: a break-glass approval needs a reason"):
        break_glass("alice")
    assert not m.BreakGlass.objects.exists()


def test_break_glass_needs_a_second_different_person(waiting_at_canary_frozen):
    assert break_glass("alice", "the fix for the outage")[1] == "requested"
    assert not gate_approved()
    with pytest.raises(BadRequest, match="needs a second person: alice asked for it already"):
        break_glass("alice")
    assert not gate_approved()

    assert break_glass("bob")[1] == "approved"
    assert gate_approved()
    row = m.BreakGlass.objects.get()
    assert (row.requested_by, row.confirmed_by, row.reason, row.freeze_name) == (
        "alice", "bob", "the fix for the outage", "xmas")
    audit = list(m.Event.objects.filter(run="example-run", reason__in=[
        "BreakGlassRequested", "BreakGlassConfirmed", "ClusterApprovalRequestApproved"]).order_by("pk")
        .values_list("reason", "actor"))
    assert audit == [("BreakGlassRequested", "alice"), ("BreakGlassConfirmed", "bob"),
                     ("ClusterApprovalRequestApproved", "bob")]
    approval = m.Event.objects.get(action=m.Event.Action.APPROVED)
    assert "break-glass approval during freeze xmas by alice and bob" in approval.message


def test_the_gate_opened_by_break_glass_lets_the_run_finish_during_the_freeze(waiting_at_canary_frozen):
    break_glass("alice", "the fix for the outage")
    break_glass("bob")
    settle()
    assert run_conditions()["Succeeded"][0] == "True"


def test_break_glass_without_a_freeze_is_refused(frozen_clock):
    tutorial_waiting_at_canary()
    with pytest.raises(BadRequest, match="no freeze holds example-run"):
        break_glass("alice", "why not")


def test_a_run_in_flight_finishes_its_clusters_and_waits_at_the_next_stage(frozen_clock):
    tutorial_fleet()
    tutorial_strategy()
    tutorial_run()
    engine_tick()  # staging's member2 is bound and applying
    declare()
    settle()
    staging = stage_status("example-run", "staging")
    assert conditions(staging["clusters"][0])["Succeeded"] == ("True", "ClusterUpdatingSucceeded")  # member2 finished
    canary = stage_status("example-run", "canary")
    assert all(not c.get("conditions") for c in canary["clusters"])


def test_a_status_patch_approving_during_a_freeze_is_refused(waiting_at_canary_frozen):
    from rollouts.services.policies import PolicyDenied
    from tests.fleet_builders import patch

    generation = m.ClusterApprovalRequest.objects.get(name=GATE).generation
    body = {"status": {"conditions": [{"type": "Approved", "status": "True", "reason": "lgtm", "message": "lgtm",
                                       "observedGeneration": generation, "lastTransitionTime": "2026-03-02T21:30:00Z"}]}}
    with pytest.raises(PolicyDenied, match="during a freeze. Frozen by ada"):
        patch("careq", GATE, body, subresource="status", actor="carol")
    assert not gate_approved()
    assert m.Event.objects.get(action=m.Event.Action.DENIED).details["attempted"] == "patch status"


# Waking up ----------------------------------------------------------------------------------


def test_a_freeze_change_wakes_every_active_run():
    from rollouts.engine import wakeup

    assert wakeup._tasks_for(changes.FreezeChanged("xmas", False), 0.0) == [(wakeup.RUNS_ADVANCE_ACTIVE, (), None)]


def test_the_engine_loop_wakes_up_when_a_freeze_starts(frozen_clock):
    declare(starts_at=clock.now() + timedelta(seconds=40))
    assert engine_tick() == 40  # nothing else is due: the loop sleeps until the freeze starts, not its interval


def test_beats_task_publishes_transitions_and_stops_mirrored_runs(frozen_clock, published):
    from rollouts import tasks

    declare(starts_at=clock.now() + timedelta(seconds=5))
    clock.advance(5)
    tasks.freezes_sync()
    assert published[-1] == changes.FreezeChanged("xmas", True)
