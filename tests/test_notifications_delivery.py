"""Delivering notifications to real receivers on loopback: a webhook that
checks the signature, a slow one, one failing with 500 then recovering, one
closing the connection, one that is gone; a real SMTP server (aiosmtpd).
And the embedded mode's sender thread beside the engine loop.

Persona: ada, the admin, owns the team channels.
"""

import email
import hashlib
import hmac
import json
import logging
import threading
import time
from datetime import timedelta

import pytest
from django.core import mail

from rollouts import changes, clock, notifier
from rollouts import models as m
from rollouts.engine import loop, wakeup
from rollouts.selectors.notices import Notice
from rollouts.services.deliveries import delivery_resend, delivery_send, delivery_test
from rollouts.services.notifications import deliveries_create, subscription_create
from tests.notify_receivers import receiver, smtp_server
from tests.real_services import free_port, wait_for

pytestmark = pytest.mark.django_db
Status = m.Delivery.Status


@pytest.fixture(autouse=True)
def _short_timeouts(settings):
    settings.FLEET_NOTIFY_TIMEOUT_SECONDS = 0.5
    settings.FLEET_BASE_URL = "https://fleet.example.com"


def subscribe(target: str, channel: str = "webhook", name: str = "releases"):
    return subscription_create(name=name, channel=channel, target=target, actor="ada")


def notice(key: str = "run-failed:uid-1:Succeeded:UpdateRunFailed:2026-03-02T21:27:00Z:1") -> Notice:
    return Notice(kind=m.Subscription.EventKind.RUN_FAILED, key=key, placement="example-placement",
                    run="example-run", payload={
                        "run": {"kind": "ClusterStagedUpdateRun", "name": "example-run", "namespace": "",
                                "placement": "example-placement", "state": "Run"},
                        "reason": "UpdateRunFailed", "summary": "Run example-run failed: member3 broke",
                        "links": {"run": "https://fleet.example.com/runs/example-run/"}})


def owe() -> m.Delivery:
    """The delivery the one subscription is owed for notice()."""
    [delivery_id] = deliveries_create([notice()])
    return m.Delivery.objects.get(pk=delivery_id)


def send(delivery: m.Delivery) -> m.Delivery:
    assert delivery_send(delivery_id=delivery.pk) is not None
    delivery.refresh_from_db()
    return delivery


def retry_due(delivery: m.Delivery) -> None:
    clock.advance((delivery.next_attempt_at - clock.precise_now()).total_seconds() + 0.001)


def test_a_webhook_gets_the_signed_document_once_and_can_verify_it(frozen_clock):
    with receiver("ok") as hook:
        _sub, secret = subscribe(hook.url)
        delivery = send(owe())
        assert delivery_send(delivery_id=delivery.pk) is None  # delivered: nothing more to send
        [request] = hook.wait_for(1)

    assert (delivery.status, delivery.attempts, delivery.last_status) == (Status.DELIVERED, 1, 204)
    assert delivery.response_ms is not None
    headers, body = request["headers"], request["body"]
    expected = hmac.new(secret.encode(), f"{headers['X-Fleet-Timestamp']}.".encode() + body, hashlib.sha256)
    assert headers["X-Fleet-Signature"] == f"sha256={expected.hexdigest()}"
    assert abs(int(headers["X-Fleet-Timestamp"]) - time.time()) < 60  # real time: what a receiver checks
    document = json.loads(body)
    assert document["idempotencyKey"] == headers["X-Fleet-Delivery"] == delivery.key
    assert (document["version"], document["type"], document["run"]["name"]) == (1, "run-failed", "example-run")


def test_a_receiver_failing_with_500_is_retried_after_a_backoff_until_it_recovers(frozen_clock):
    with receiver("flaky", failures=2) as hook:
        subscribe(hook.url)
        delivery = send(owe())
        assert (delivery.status, delivery.last_status, delivery.last_error) == (Status.PENDING, 500, "HTTP 500")
        wait = (delivery.next_attempt_at - clock.precise_now()).total_seconds()
        assert 5 <= wait <= 10
        assert delivery_send(delivery_id=delivery.pk) is None  # not due yet
        retry_due(delivery)
        delivery = send(delivery)
        retry_due(delivery)
        delivery = send(delivery)
        requests_ = hook.wait_for(3)

    assert (delivery.status, delivery.attempts, delivery.last_error) == (Status.DELIVERED, 3, "")
    assert len({r["headers"]["X-Fleet-Delivery"] for r in requests_}) == 1  # one key: the receiver dedupes


def test_a_slow_receiver_times_out_and_is_retried(frozen_clock):
    with receiver("slow", delay=2.0) as hook:
        subscribe(hook.url)
        started = time.monotonic()
        delivery = send(owe())
        took = time.monotonic() - started

    assert delivery.status == Status.PENDING and delivery.last_error == "no answer within 0.5 s"
    assert took < 1.9  # gave up at the timeout, did not wait for the answer
    assert delivery.next_attempt_at > clock.precise_now()


def test_a_receiver_that_closes_the_connection_is_retried(frozen_clock):
    with receiver("closing") as hook:
        subscribe(hook.url)
        delivery = send(owe())
        hook.wait_for(1)

    assert delivery.status == Status.PENDING
    assert delivery.last_error.startswith("connection failed (")


def test_a_4xx_is_not_retried(frozen_clock):
    with receiver("gone") as hook:
        subscribe(hook.url)
        delivery = send(owe())

    assert (delivery.status, delivery.last_status) == (Status.FAILED, 410)
    assert delivery.last_error == "HTTP 410 (not retried)"


def test_temporary_failures_are_retried_for_24_hours_then_given_up(frozen_clock):
    port = free_port()  # nobody listens: connection refused
    subscribe(f"http://127.0.0.1:{port}/hook")
    delivery = owe()
    attempts = 0
    while delivery.status == Status.PENDING:
        delivery = send(delivery)
        attempts += 1
        if delivery.status == Status.PENDING:
            retry_due(delivery)
    assert delivery.status == Status.FAILED and "gave up" in delivery.last_error
    assert clock.precise_now() - delivery.created_at >= timedelta(hours=24)
    assert 25 <= attempts <= 60  # 10 s doubling to an hour, jittered: ~30 attempts in a day


def test_send_again_makes_a_failed_delivery_due_with_a_new_window_and_is_audited(frozen_clock):
    with receiver("gone") as hook:
        subscribe(hook.url)
        delivery = send(owe())
        hook.behaviour = "ok"
        delivery = delivery_resend(delivery=delivery, actor="ada", via="web")
        delivery = send(delivery)
    assert (delivery.status, delivery.attempts) == (Status.DELIVERED, 2)
    event = m.Event.objects.get(reason="DeliveryResent")
    assert (event.actor, event.details["key"]) == ("ada", delivery.key)


def test_no_url_token_or_secret_reaches_the_log(frozen_clock, caplog):
    caplog.set_level(logging.DEBUG)
    with receiver("closing") as hook:
        _sub, secret = subscribe(hook.url)
        send(owe())
    logged = caplog.text
    assert "secret-path-token" not in logged and secret not in logged
    assert "attempt 1 failed: connection failed" in logged


def test_slack_and_teams_channels_get_their_message_formats(frozen_clock):
    with receiver("ok") as slack, receiver("ok") as teams:
        subscribe(slack.url, "slack", "chat")
        subscribe(teams.url, "teams", "meetings")
        for delivery_id in deliveries_create([notice()]):
            delivery_send(delivery_id=delivery_id)
        [slack_request], [teams_request] = slack.wait_for(1), teams.wait_for(1)
    assert "X-Fleet-Signature" not in slack_request["headers"]
    slack_doc, teams_doc = json.loads(slack_request["body"]), json.loads(teams_request["body"])
    assert slack_doc["text"] == "Run example-run failed: member3 broke"
    assert slack_doc["blocks"][-1]["elements"][0]["url"] == "https://fleet.example.com/runs/example-run/"
    assert teams_doc["attachments"][0]["content"]["actions"][0]["type"] == "Action.OpenUrl"


# Email ------------------------------------------------------------------------------------------


def test_email_goes_through_a_real_smtp_server(frozen_clock, settings):
    with smtp_server() as (port, messages):
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
        subscribe("oncall@example.com", "email")
        delivery = send(owe())
        wait_for(lambda: messages, timeout=5, what="the message")
    assert delivery.status == Status.DELIVERED
    [envelope] = messages
    assert envelope.rcpt_tos == ["oncall@example.com"]
    text = envelope.content.decode()
    assert "Subject: [Fleet UI] Run example-run failed: member3 broke" in text
    assert "Open the run: https://fleet.example.com/runs/example-run/" in text
    headers = email.message_from_bytes(envelope.content)
    assert "".join(headers["X-Fleet-Delivery"].split()) == delivery.key


def test_email_to_an_smtp_server_that_is_down_is_retried(frozen_clock, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()
    subscribe("oncall@example.com", "email")
    delivery = send(owe())
    assert delivery.status == Status.PENDING and delivery.last_error.startswith("mail server unreachable")


def test_the_embedded_modes_email_goes_to_the_console_backend(frozen_clock):
    subscribe("oncall@example.com", "email")  # the test settings' locmem backend stands in for the console
    assert send(owe()).status == Status.DELIVERED
    assert mail.outbox[0].to == ["oncall@example.com"]


def test_a_test_message_is_sent_at_once_and_logged(frozen_clock):
    with receiver("ok") as hook:
        sub, _secret = subscribe(hook.url)
        delivery = delivery_test(subscription=sub, actor="ada")
        [request] = hook.wait_for(1)
    assert delivery.status == Status.DELIVERED and delivery.kind == "test"
    assert json.loads(request["body"])["links"]["overview"] == "https://fleet.example.com/"


# The embedded sender ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_engine_loop_sends_from_a_thread_of_its_own_and_stops_it(settings, monkeypatch, tmp_path):
    settings.FLEET_ENGINE_SOCKET = f"/tmp/fleet-notify-{free_port()}.sock"
    monkeypatch.setattr(loop, "engine_tick", lambda: None)
    with receiver("ok") as hook:
        subscribe(hook.url)
        stop = threading.Event()
        engine = threading.Thread(target=loop.engine_main, kwargs={"options": {"interval": 30}, "stop": stop})
        engine.start()
        try:
            notifier.on_changes([changes.FreezeChanged("holidays", True)])  # as after a commit
            [request] = hook.wait_for(1)
        finally:
            stop.set()
            notifier.wake()
            wakeup.notify()
            engine.join(timeout=10)
    assert json.loads(request["body"])["type"] == "freeze-started"
    assert m.Delivery.objects.get().status == Status.DELIVERED
    assert not [t for t in threading.enumerate() if t.name == "fleet-notifications"]
