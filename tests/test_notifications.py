"""Notifications: what a committed change tells whom, once.

Personas: olivia starts runs; alice and bob are release managers (alice in
sre); vera is a viewer; ada is the admin who makes team channels.
The notifier is called as changes.py calls it after commit; the tests that
prove the wiring commit through django_capture_on_commit_callbacks.
"""

import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.db import transaction

from rollouts import changes, clock, notifier
from rollouts import models as m
from rollouts.api.errors import BadRequest
from rollouts.roles import ADMINS, RELEASE_MANAGERS, VIEWERS, user_create
from rollouts.selectors.notices import run_outcome
from rollouts.services import deliveries, notify_formats
from rollouts.services.approvals import approval_request_approve, approval_request_reject
from rollouts.services.freezes import freeze_create
from rollouts.services.notifications import (
    subscription_create,
    subscription_delete,
    subscription_update,
)
from tests.fleet_builders import (
    SIMULATE_FAILURE,
    kind,
    run,
    run_obj,
    set_state,
    settle,
    stage,
    staged_fleet,
    strategy,
    tutorial_waiting_at_canary,
)

pytestmark = pytest.mark.django_db

GATE = "example-run-canary"
Kind = m.Subscription.EventKind


@pytest.fixture
def people():
    sre = Group.objects.create(name="sre")
    for name in ("olivia", "alice", "bob"):
        user, _ = user_create(username=name, role=RELEASE_MANAGERS)
        if name == "alice":
            user.groups.add(sre)
    user_create(username="vera", role=VIEWERS)
    user_create(username="ada", role=ADMINS)


def team(name: str = "releases", channel: str = "webhook", target: str = "http://127.0.0.1:9/hook", **filters):
    sub, _secret = subscription_create(name=name, channel=channel, target=target, actor="ada", **filters)
    return sub


def react(*events) -> None:
    """What changes.py does after a commit."""
    notifier.on_changes(list(events))


def run_changed():
    return changes.RunChanged.of(run_obj(), changes.Origin.ENGINE)


def owed(**filters) -> list[m.Delivery]:
    return list(m.Delivery.objects.filter(**filters).order_by("id"))


@pytest.fixture
def at_gate(frozen_clock, people):
    """Subscribed before anything happened, then the tutorial run waits at canary's gate."""
    team()
    tutorial_waiting_at_canary()


# What is told ------------------------------------------------------------------


def test_a_gate_that_opens_tells_who_may_approve_and_links_the_approve_dialog(at_gate, settings):
    settings.FLEET_BASE_URL = "https://fleet.example.com"
    react(run_changed())

    [delivery] = owed(kind=Kind.GATE_OPENED)
    payload = delivery.payload
    assert payload["approvalRequest"] == GATE and payload["stage"] == "canary"
    assert payload["approvers"]["users"] == ["ada", "alice", "bob", "olivia"]  # vera may only view
    assert payload["links"]["approve"] == f"https://fleet.example.com/approvals/{GATE}/"
    assert payload["links"]["run"] == "https://fleet.example.com/runs/example-run/"
    assert delivery.status == m.Delivery.Status.PENDING and delivery.attempts == 0  # not sent by the reaction


def test_a_gate_under_a_policy_names_only_the_people_the_policy_allows(frozen_clock, people):
    from tests.test_approval_policies import canary, strategy_doc

    team()
    tutorial_waiting_at_canary(strategy_doc(canary({"groups": ["sre"], "fourEyes": True})))
    react(run_changed())

    [delivery] = owed(kind=Kind.GATE_OPENED)
    assert delivery.payload["approvers"]["users"] == ["alice"]
    assert "from sre" in delivery.payload["approvers"]["text"]


def test_the_same_change_read_twice_or_in_two_processes_is_owed_once(at_gate):
    react(run_changed())
    react(run_changed(), run_changed())
    settle()
    react(run_changed())

    assert len(owed(kind=Kind.GATE_OPENED)) == 1


def test_approval_given_is_told_once_with_the_approvers_message(at_gate):
    approval_request_approve(kind=kind("careq"), name=GATE, namespace="", actor="alice", message="canary is green")
    event = changes.ApprovalRequestChanged.of(m.ClusterApprovalRequest.objects.get(name=GATE), changes.Origin.PERSON)
    react(event)
    react(event)

    [delivery] = owed(kind=Kind.APPROVED)
    assert delivery.payload["message"] == "canary is green"
    assert delivery.payload["run"]["name"] == "example-run"


def test_a_rejection_tells_who_rejected_and_why_and_the_run_stopping(at_gate):
    approval_request_reject(kind=kind("careq"), name=GATE, namespace="", actor="bob", reason="error rate up")
    react(changes.ApprovalRequestChanged.of(m.ClusterApprovalRequest.objects.get(name=GATE), changes.Origin.PERSON))
    settle()
    react(run_changed())

    [rejected] = owed(kind=Kind.REJECTED)
    assert (rejected.payload["by"], rejected.payload["message"]) == ("bob", "error rate up")
    [stopped] = owed(kind=Kind.RUN_STOPPED)
    assert stopped.payload["run"]["state"] == "Stop"


def test_a_run_that_succeeds_is_told_once_however_often_it_changes_after(at_gate):
    approval_request_approve(kind=kind("careq"), name=GATE, namespace="", actor="alice")
    settle()
    react(run_changed())
    react(run_changed())

    [succeeded] = owed(kind=Kind.RUN_SUCCEEDED)
    assert succeeded.key.startswith(f"run-succeeded:{run_obj().uid}:Succeeded:UpdateRunSucceeded:")


def test_each_stop_is_told_once_and_a_second_stop_again(at_gate):
    set_state("example-run", "Stop")
    settle()
    react(run_changed())
    set_state("example-run", "Run")
    settle()
    clock.advance(5)
    set_state("example-run", "Stop")
    settle()
    react(run_changed())
    react(run_changed())

    assert len(owed(kind=Kind.RUN_STOPPED)) == 2


@pytest.mark.parametrize(("conditions", "expected"), [
    pytest.param([{"type": "Progressing", "status": "True", "reason": "UpdateRunProgressing"}], None, id="running"),
    pytest.param([{"type": "Progressing", "status": "False", "reason": "UpdateRunStuck"}], Kind.RUN_STUCK,
                 id="stuck"),
    pytest.param([{"type": "Progressing", "status": "False", "reason": "UpdateRunStopped"}], Kind.RUN_STOPPED,
                 id="stopped"),
    pytest.param([{"type": "Progressing", "status": "False", "reason": "UpdateRunWaiting"}], None,
                 id="waiting-is-no-outcome"),
    pytest.param([{"type": "Progressing", "status": "False", "reason": "UpdateRunFailed"},
                  {"type": "Succeeded", "status": "False", "reason": "UpdateRunFailed"}], Kind.RUN_FAILED,
                 id="failed-wins-over-not-progressing"),
    pytest.param([{"type": "Succeeded", "status": "True", "reason": "UpdateRunSucceeded"}], Kind.RUN_SUCCEEDED,
                 id="succeeded"),
])
def test_a_runs_outcome_is_read_from_its_conditions(conditions, expected):
    outcome = run_outcome(conditions)
    assert (outcome[0] if outcome else None) == expected


def test_a_failing_cluster_links_to_its_row_on_the_run_page(frozen_clock, people):
    team()
    staged_fleet({"prod": ["member1", "member2"]}, labels={"member1": {SIMULATE_FAILURE: "true"}})
    strategy("example-strategy", stage("prod", max_concurrency=2))
    run()
    settle()
    event = changes.ClusterFailing("ClusterResourcePlacement", "", "example-placement")
    react(event)
    react(event)

    [failing] = owed(kind=Kind.CLUSTER_FAILING)
    assert failing.payload["cluster"] == "member1" and failing.payload["reason"] == "ApplyFailed"
    assert failing.payload["links"]["cluster"].endswith("/runs/example-run/#cluster-member1")


def test_a_freeze_starting_and_ending_reaches_every_subscription_that_asks(frozen_clock, people):
    team("only-prod", placement="prod-placement")
    team("no-freezes", events_=[Kind.RUN_FAILED])
    react(changes.FreezeChanged("holidays", True))
    react(changes.FreezeChanged("holidays", True))  # the same change published twice
    clock.advance(3600)
    react(changes.FreezeChanged("holidays", False))

    assert [(d.subscription.name, d.kind) for d in owed()] == [
        ("only-prod", Kind.FREEZE_STARTED), ("only-prod", Kind.FREEZE_ENDED)]


def test_a_freeze_notice_says_who_froze_why_and_until_when(frozen_clock, people):
    team("all")
    until = clock.now() + timedelta(hours=8)
    freeze_create(name="incident-42", reason="payments outage", actor="ada", ends_at=until)
    react(changes.FreezeChanged("incident-42", True))
    [delivery] = owed(kind=Kind.FREEZE_STARTED)
    facts = delivery.payload["freeze"]
    assert (facts["name"], facts["active"], facts["declaredBy"], facts["reason"], facts["until"]) == (
        "incident-42", True, "ada", "payments outage", clock.rfc3339(until))
    assert delivery.payload["summary"] == "Freeze incident-42 by ada started: payments outage"
    assert delivery.payload["links"]["freezes"].endswith("/freezes/")


# Who is told ------------------------------------------------------------------------


def test_filters_by_placement_run_label_and_event_kind(frozen_clock, people):
    for name, filters in {"any": {}, "placement": {"placement": "example-placement"},
                          "other-placement": {"placement": "other"}, "run": {"run_name": "example-run"},
                          "other-run": {"run_name": "other-run"}, "labels": {"label_selector": "env=prod"},
                          "other-labels": {"label_selector": "env in (dev,test)"},
                          "gates": {"events_": [Kind.GATE_OPENED]}, "failures": {"events_": [Kind.RUN_FAILED]},
                          }.items():
        team(name, **filters)
    tutorial_waiting_at_canary()
    m.ClusterResourcePlacement.objects.filter(name="example-placement").update(labels={"env": "prod"})
    react(run_changed())

    told = sorted(d.subscription.name for d in owed(kind=Kind.GATE_OPENED))
    assert told == ["any", "gates", "labels", "placement", "run"]


def test_a_subscription_made_after_the_change_is_not_told_of_it(frozen_clock, people):
    tutorial_waiting_at_canary()
    clock.advance(60)
    team("late")
    react(run_changed())

    assert owed() == []


def test_a_disabled_subscription_is_told_nothing(at_gate):
    subscription_update(subscription=m.Subscription.objects.get(), enabled=False, actor="ada")
    react(run_changed())
    assert owed() == []


# After commit, never in the way ------------------------------------------------------


def test_deliveries_are_written_after_commit_and_a_rollback_owes_nothing(
        frozen_clock, people, django_capture_on_commit_callbacks):
    team()
    tutorial_waiting_at_canary()
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError), transaction.atomic():
            changes.publish(run_changed())
            raise RuntimeError("the write failed")
    assert owed() == []

    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            changes.publish(run_changed())
        assert owed() == []  # not before the commit
    assert len(owed(kind=Kind.GATE_OPENED)) == 1


def test_a_notification_that_cannot_be_recorded_fails_neither_the_approval_nor_the_engine(
        at_gate, monkeypatch, django_capture_on_commit_callbacks):
    def broken(events):
        raise RuntimeError("database gone")

    monkeypatch.setattr(notifier, "notices_for", broken)
    with django_capture_on_commit_callbacks(execute=True):
        _request, changed = approval_request_approve(kind=kind("careq"), name=GATE, namespace="", actor="alice")
        settle()
    assert changed and run_obj().status["conditions"][-1]["reason"] == "UpdateRunSucceeded"


def test_without_subscriptions_a_commit_reads_one_row_more(at_gate, django_assert_max_num_queries):
    m.Subscription.objects.all().delete()
    event = run_changed()
    with django_assert_max_num_queries(1):
        react(event)


def test_the_reaction_reads_a_bounded_number_of_rows_for_a_batch(
        frozen_clock, people, django_assert_max_num_queries):
    for i in range(20):
        team(f"team-{i}")
    tutorial_waiting_at_canary()
    events = [run_changed(), changes.FreezeChanged("holidays", True)]
    # exists, runs, requests, the gate's policy and approvers, placements' labels, subscriptions, insert, ids
    with django_assert_max_num_queries(14):
        react(*events)
    assert len(owed()) == 40


def test_where_the_embedded_sender_runs_a_commit_only_queues_its_events(at_gate, monkeypatch,
                                                                         django_assert_num_queries):
    import queue

    pending = queue.SimpleQueue()
    monkeypatch.setattr(notifier, "_pending", pending)
    event = run_changed()
    with django_assert_num_queries(0):  # the engine's thread reads and writes nothing for notifications
        react(event)
    assert pending.get_nowait() == [event] and owed() == []
    assert len(notifier.record([event])) == 1  # what the sender thread does with them


def test_in_celery_mode_a_commit_hands_its_events_to_the_notifications_queue(
        at_gate, monkeypatch, settings, django_assert_num_queries):
    # The hand-off thread is idle in tests (conftest.IdleHandOff): its queue is taken here.
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    sent = []
    monkeypatch.setattr(notifier.current_app, "send_task", lambda name, args, queue: sent.append((name, args, queue)))
    event = run_changed()
    with django_assert_num_queries(0):  # the committing thread only queues them
        react(event, changes.FreezeChanged("holidays", True))
    hand_off = notifier.HandOff()
    hand_off.hand(notifier._hand_off().pending.get(timeout=5))  # what the hand-off thread does

    [(name, [payload], queue)] = sent
    assert (name, queue) == ("rollouts.tasks.notifications_record", "notifications")
    assert notifier.decode(json.loads(json.dumps(payload))) == [event, changes.FreezeChanged("holidays", True)]
    assert owed() == []  # the worker records them


def test_in_celery_mode_with_the_broker_down_the_commit_records_the_deliveries_itself(at_gate, monkeypatch,
                                                                                      settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"

    def down(*args, **kwargs):
        raise ConnectionError("redis is down")

    monkeypatch.setattr(notifier.current_app, "send_task", down)
    notifier.HandOff().hand([run_changed()])
    assert len(owed(kind=Kind.GATE_OPENED)) == 1  # beat's sweep sends it once the broker is back


# Subscriptions ------------------------------------------------------------------------------


def test_a_webhooks_secret_is_shown_once_and_stored_encrypted(people):
    sub, secret = subscription_create(name="ci", channel="webhook", target="https://ci.example.com/fleet",
                                      actor="ada")
    assert len(secret) >= 40
    stored = m.Subscription.objects.get(pk=sub.pk)
    assert secret not in stored.secret_encrypted and stored.secret() == secret
    assert secret not in json.dumps(list(m.Event.objects.values("details", "message")))


def test_subscription_changes_are_audited_without_the_slack_token(people):
    sub, secret = subscription_create(name="chat", channel="slack", actor="ada",
                                      target="https://hooks.slack.example/services/T0/B0/XYZSECRET")
    assert secret == ""
    subscription_update(subscription=sub, events_=[Kind.RUN_FAILED], actor="ada", via="cli")
    subscription_delete(subscription=sub, actor="ada")

    rows = list(m.Event.objects.filter(object_kind="NotificationSubscription").order_by("id"))
    assert [(e.action, e.actor) for e in rows] == [("created", "ada"), ("configured", "ada"), ("deleted", "ada")]
    assert rows[0].details["target"] == "https://hooks.slack.example/…"
    assert rows[1].details["changes"]["events"] == [[], ["run-failed"]]
    assert "XYZSECRET" not in json.dumps([e.details for e in rows])


@pytest.mark.parametrize(("fields", "field"), [
    pytest.param({"name": "Bad Name"}, "name", id="name"),
    pytest.param({"channel": "pager"}, "channel", id="channel"),
    pytest.param({"target": "ftp://example.com/"}, "target", id="url"),
    pytest.param({"channel": "email", "target": "not-an-address"}, "target", id="address"),
    pytest.param({"events_": ["gate-opened", "lunch"]}, "events", id="events"),
    pytest.param({"label_selector": "env in"}, "unable to parse", id="selector"),
])
def test_bad_input_is_refused_naming_the_field(people, fields, field):
    values = {"name": "ok", "channel": "webhook", "target": "https://example.com/hook", **fields}
    with pytest.raises(BadRequest, match=field):
        subscription_create(actor="ada", **values)


def test_two_team_channels_may_not_share_a_name_but_people_may(people):
    from django.contrib.auth import get_user_model

    alice, bob = get_user_model().objects.filter(username__in=["alice", "bob"]).order_by("username")
    team("mine")
    with pytest.raises(BadRequest, match="name: a subscription named mine exists"):
        team("mine")
    for owner in (alice, bob):
        subscription_create(name="mine", channel="email", target=f"{owner.username}@example.com", owner=owner,
                            actor=owner.username)
    assert m.Subscription.objects.filter(name="mine").count() == 3


# Formats ------------------------------------------------------------------------------------------


def test_the_webhook_body_is_signed_over_the_timestamp_and_the_exact_bytes(at_gate):
    react(run_changed())
    delivery = owed()[0]
    body = notify_formats.encode(notify_formats.webhook_body(delivery))
    document = json.loads(body)
    assert (document["version"], document["type"], document["idempotencyKey"]) == (1, "gate-opened", delivery.key)
    assert set(document) >= {"occurredAt", "summary", "run", "stage", "links", "subscription"}
    expected = notify_formats.signature("s3cret", 1700000000, body)
    import hashlib
    import hmac

    assert expected == "sha256=" + hmac.new(b"s3cret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert notify_formats.signature("s3cret", 1700000001, body) != expected


def test_slack_and_teams_messages_carry_the_run_stage_and_a_button_per_link(at_gate):
    react(run_changed())
    delivery = owed()[0]
    slack = notify_formats.slack_body(delivery)
    buttons = slack["blocks"][-1]["elements"]
    assert [b["text"]["text"] for b in buttons] == ["Review and approve", "Open the run"]
    assert "*Stage*\ncanary" in json.dumps(slack["blocks"][1]["fields"]).replace("\\n", "\n")
    card = notify_formats.teams_body(delivery)["attachments"][0]["content"]
    assert [a["title"] for a in card["actions"]] == ["Review and approve", "Open the run"]
    assert {"title": "Run", "value": "example-run"} in card["body"][1]["facts"]


@pytest.mark.parametrize(("attempts", "low", "high"), [
    pytest.param(1, 5, 10, id="first-retry-10s"),
    pytest.param(2, 10, 20, id="doubling"),
    pytest.param(6, 160, 320, id="sixth"),
    pytest.param(20, 1800, 3600, id="capped-at-an-hour"),
])
def test_backoff_doubles_with_jitter_up_to_an_hour(attempts, low, high):
    assert deliveries.backoff_seconds(attempts, rng=lambda: 0.0) == low
    assert deliveries.backoff_seconds(attempts, rng=lambda: 1.0) == high
