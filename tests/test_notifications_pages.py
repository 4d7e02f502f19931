"""Subscribing on the Notifications page, team channels in the admin and
with `fleet notifications`, the delivery log and "Send again".

Personas: rita is a release manager with her own subscriptions; ada is an
admin who manages the team channels; vera is a viewer.
"""

import pytest
from django.test import Client

from rollouts import models as m
from rollouts.cli.parser import MAIN_HELP
from rollouts.roles import ADMINS, RELEASE_MANAGERS, VIEWERS, user_create
from rollouts.services.notifications import subscription_create
from tests.notify_receivers import receiver

pytestmark = pytest.mark.django_db
PAGE = "/settings/notifications/"


def client_for(name: str, role: str) -> Client:
    user, _ = user_create(username=name, role=role)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def rita():
    return client_for("rita", RELEASE_MANAGERS)


@pytest.fixture
def ada():
    return client_for("ada", ADMINS)


def audit(action: str) -> list[m.Event]:
    return list(m.Event.objects.filter(object_kind="NotificationSubscription", action=action))


def test_a_person_subscribes_on_their_page_and_sees_the_secret_once(rita):
    response = rita.post(PAGE, {"name": "my-gates", "channel": "webhook", "target": "https://ci.example.com/hook",
                                "events": ["gate-opened", "run-failed"]})
    assert response.status_code == 201
    sub = m.Subscription.objects.get()
    secret = response.context["secret"]
    assert secret and secret in response.content.decode() and sub.secret() == secret
    assert (sub.owner.username, sub.events) == ("rita", ["gate-opened", "run-failed"])
    assert secret not in rita.get(PAGE).content.decode()
    [created] = audit("created")
    assert (created.actor, created.details["via"]) == ("rita", "web")


def test_bad_input_is_shown_naming_the_field_not_a_500(rita):
    response = rita.post(PAGE, {"name": "mine", "channel": "email", "target": "nobody"})
    assert response.status_code == 400
    assert "target: &#x27;nobody&#x27; is not an email address" in response.content.decode()
    assert not m.Subscription.objects.exists()


def test_only_admins_make_team_channels(rita, ada):
    assert rita.post(PAGE, {"name": "team", "channel": "slack", "target": "https://hooks.example/x",
                            "team": "on"}).status_code == 403
    assert ada.post(PAGE, {"name": "team", "channel": "slack", "target": "https://hooks.example/x",
                           "team": "on"}).status_code == 201
    assert m.Subscription.objects.get().owner is None


def test_a_person_sees_and_deletes_only_their_own(rita, ada):
    ada_user = m.Subscription._meta.get_field("owner").related_model.objects.get(username="ada")
    theirs, _ = subscription_create(name="adas", channel="email", target="ada@example.com", owner=ada_user,
                                    actor="ada")
    team, _ = subscription_create(name="team", channel="email", target="team@example.com", actor="ada")
    page = rita.get(PAGE).content.decode()
    assert "adas" not in page and "team@example.com" not in page
    assert rita.post(f"/settings/notifications/{theirs.pk}/delete/").status_code == 404
    assert rita.post(f"/settings/notifications/{team.pk}/delete/").status_code == 404
    assert ada.post(f"/settings/notifications/{team.pk}/delete/").status_code == 302
    assert [e.object_name for e in audit("deleted")] == ["team"]


def test_the_page_hides_a_slack_url_token(ada):
    ada.post(PAGE, {"name": "chat", "channel": "slack", "target": "https://hooks.example/services/T0/TOKEN123",
                    "team": "on"})
    assert "TOKEN123" not in ada.get(PAGE).content.decode()


def test_a_test_message_reports_how_it_went(rita, settings):
    settings.FLEET_NOTIFY_TIMEOUT_SECONDS = 0.5
    with receiver("flaky", failures=1) as hook:
        rita.post(PAGE, {"name": "mine", "channel": "teams", "target": hook.url})
        sub = m.Subscription.objects.get()
        failed = rita.post(f"/settings/notifications/{sub.pk}/test/", follow=True).content.decode()
        worked = rita.post(f"/settings/notifications/{sub.pk}/test/", follow=True).content.decode()
    assert "not delivered: HTTP 500" in failed
    assert "Test message delivered to mine" in worked


def test_the_delivery_log_is_for_admins_and_sends_again(rita, ada):
    with receiver("gone") as hook:
        sub, _ = subscription_create(name="team", channel="webhook", target=hook.url, actor="ada")
        ada.post(f"/settings/notifications/{sub.pk}/test/")
    delivery = m.Delivery.objects.get()
    assert delivery.status == m.Delivery.Status.FAILED
    assert rita.get("/notifications/deliveries/").status_code == 403
    log = ada.get("/notifications/deliveries/").content.decode()
    assert "HTTP 410 (not retried)" in log and f'id="delivery-{delivery.pk}"' in log and "Send again" in log

    assert ada.post(f"/notifications/deliveries/{delivery.pk}/send-again/").status_code == 302
    delivery.refresh_from_db()
    assert delivery.status == m.Delivery.Status.PENDING
    assert m.Event.objects.filter(reason="DeliveryResent", actor="ada").exists()


def test_the_delivery_log_reads_a_bounded_number_of_rows(ada, django_assert_max_num_queries):
    for i in range(5):
        sub, _ = subscription_create(name=f"team-{i}", channel="webhook", target="http://127.0.0.1:9/", actor="ada")
        for j in range(5):
            m.Delivery.objects.create(subscription=sub, key=f"k{j}", kind="run-failed", payload={"summary": "x"},
                                      next_attempt_at=sub.created_at, created_at=sub.created_at,
                                      retry_until=sub.created_at)
    with django_assert_max_num_queries(8):  # session, user, permissions (2), deliveries, background health
        assert ada.get("/notifications/deliveries/").status_code == 200
    with django_assert_max_num_queries(9):
        assert ada.get(PAGE).status_code == 200


def test_viewers_may_subscribe_for_themselves(settings):
    vera = client_for("vera", VIEWERS)
    assert vera.post(PAGE, {"name": "mine", "channel": "email", "target": "vera@example.com"}).status_code == 201


# The admin ---------------------------------------------------------------------------------------


def test_the_admin_adds_a_team_channel_through_the_service_and_shows_the_secret_once(ada):
    response = ada.post("/admin/rollouts/subscription/add/", {
        "name": "ci", "channel": "webhook", "target": "https://ci.example.com/hook", "events": ["run-failed"],
        "enabled": "on"})
    assert response.status_code == 200, response.content[:500]
    sub = m.Subscription.objects.get()
    assert response.context["secret"] == sub.secret() and sub.owner is None
    [created] = audit("created")
    assert created.details["via"] == "admin"

    response = ada.post(f"/admin/rollouts/subscription/{sub.pk}/change/", {
        "name": "ci", "target": "https://ci.example.com/other", "events": ["run-failed", "run-stuck"],
        "enabled": "on"})
    assert response.status_code == 302
    [changed] = audit("configured")
    assert changed.details["changes"]["events"] == [["run-failed"], ["run-failed", "run-stuck"]]


def test_the_admin_refuses_a_bad_target_as_a_form_error(ada):
    response = ada.post("/admin/rollouts/subscription/add/", {
        "name": "ci", "channel": "webhook", "target": "ftp://ci.example.com/", "enabled": "on"})
    assert response.status_code == 200
    assert "target: must be an http:// or https:// URL" in response.content.decode()
    assert not m.Subscription.objects.exists()


def test_the_admins_delivery_log_sends_again(ada):
    sub, _ = subscription_create(name="team", channel="webhook", target="http://127.0.0.1:9/", actor="ada")
    delivery = m.Delivery.objects.create(subscription=sub, key="k", kind="run-failed", payload={},
                                         status=m.Delivery.Status.FAILED, next_attempt_at=sub.created_at,
                                         created_at=sub.created_at, retry_until=sub.created_at)
    assert ada.get("/admin/rollouts/delivery/").status_code == 200
    ada.post("/admin/rollouts/delivery/", {"action": "send_again", "_selected_action": [delivery.pk]})
    delivery.refresh_from_db()
    assert delivery.status == m.Delivery.Status.PENDING


# fleet notifications -----------------------------------------------------------------------------


def test_fleet_notifications_manages_team_channels_with_the_same_audit(fleet, settings):
    settings.FLEET_NOTIFY_TIMEOUT_SECONDS = 0.5
    with receiver("ok") as hook:
        created = fleet("--as", "ada", "notifications", "create", "ci", "--target", hook.url,
                        "--events", "gate-opened,run-failed", "--selector", "env=prod")
        assert created.code == 0, created.err
        secret = created.out.splitlines()[1].rsplit(" ", 1)[1]
        assert m.Subscription.objects.get().secret() == secret
        tested = fleet("notifications", "test", "ci")
        assert tested.code == 0 and "test message delivered to ci" in tested.out
    listed = fleet("notifications", "list").out
    assert "ci" in listed and "labels=env=prod" in listed and "gate-opened,run-failed" in listed
    assert hook.url not in listed  # the path may be a token
    log = fleet("notifications", "deliveries", "ci").out
    assert "test" in log and "delivered" in log
    deleted = fleet("--as", "ada", "notifications", "delete", "ci")
    assert deleted.code == 0
    assert [(e.action, e.details.get("via")) for e in m.Event.objects.filter(
        object_kind="NotificationSubscription").order_by("id")] == [("created", "cli"), ("deleted", "cli")]


def test_fleet_notifications_says_what_is_wrong(fleet):
    bad = fleet("notifications", "create", "ci", "--target", "not a url")
    assert bad.code == 1 and "target: must be an http:// or https:// URL" in bad.err
    missing = fleet("notifications", "delete", "nope")
    assert missing.code == 1 and "nope" in missing.err
    assert "notifications  create, list, delete or test" in MAIN_HELP
