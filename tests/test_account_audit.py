"""Account changes are chained audit events, whoever makes them: the admin
(actor: the signed-in admin, with their address), a shell or an OIDC
sign-in through the ORM (actor: system). Personas: ada, an admin; vera, a
viewer whose account changes."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client

from rollouts import models as m
from rollouts.roles import ADMINS, RELEASE_MANAGERS, VIEWERS, user_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def vera():
    return user_create(username="vera", role=VIEWERS, password="s3cret-pass")[0]


@pytest.fixture
def ada():
    user_create(username="ada", role=ADMINS, password="ada-pass")
    client = Client(REMOTE_ADDR="192.0.2.7")
    assert client.login(username="ada", password="ada-pass")
    return client


def changes_since(first_id: int) -> list[tuple]:
    return list(m.Event.objects.filter(id__gt=first_id, action__in=["created", "configured"])
                .order_by("id").values_list("actor", "action", "object_kind", "object_name", "details"))


def last_id() -> int:
    return m.Event.objects.order_by("-id").values_list("id", flat=True).first() or 0


def test_an_admin_giving_a_role_in_the_admin_is_recorded_with_who_and_from_where(ada, vera):
    start = last_id()
    managers = Group.objects.get(name=RELEASE_MANAGERS)
    response = ada.post(f"/admin/auth/user/{vera.pk}/change/", {
        "username": "vera", "is_active": "on", "groups": [managers.pk],
        "date_joined_0": "2026-03-02", "date_joined_1": "21:27:00", "initial-date_joined_0": "2026-03-02",
        "initial-date_joined_1": "21:27:00",
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    events = changes_since(start)
    assert ("ada", "configured", "User", "vera",
            {"changes": {"groups": {"removed": ["viewers"]}}, "client_address": "192.0.2.7"}) in events
    assert ("ada", "configured", "User", "vera",
            {"changes": {"groups": {"added": ["release managers"]}}, "client_address": "192.0.2.7"}) in events


def test_flags_and_passwords_are_recorded_without_the_hash(vera):
    start = last_id()
    vera.is_active = False
    vera.is_staff = True
    vera.set_password("another-pass-123")
    vera.save()
    [event] = changes_since(start)
    assert event == ("system", "configured", "User", "vera",
                     {"changes": {"is_active": [True, False], "is_staff": [False, True], "password": "changed"}})
    assert vera.password not in str(event)


def test_group_changes_from_either_side_and_clears_are_recorded(vera):
    start = last_id()
    sre = Group.objects.create(name="sre")
    sre.user_set.add(vera)  # the reverse side, as an OIDC sign-in may do
    vera.groups.clear()
    events = changes_since(start)
    assert events == [
        ("system", "configured", "User", "vera", {"changes": {"groups": {"added": ["sre"]}}}),
        ("system", "configured", "User", "vera", {"changes": {"groups": {"removed": ["sre", "viewers"]}}}),
    ]


def test_permission_changes_of_a_group_and_a_user_are_recorded(vera):
    start = last_id()
    approve = Permission.objects.get(codename="approve_stage")
    Group.objects.get(name=VIEWERS).permissions.add(approve)
    vera.user_permissions.add(approve)
    assert changes_since(start) == [
        ("system", "configured", "Group", "viewers", {"changes": {"permissions": {"added": ["rollouts.approve_stage"]}}}),
        ("system", "configured", "User", "vera",
         {"changes": {"user_permissions": {"added": ["rollouts.approve_stage"]}}}),
    ]


def test_account_events_are_sealed_into_the_chain(vera, fleet):
    vera.groups.clear()
    code, out, _ = fleet("audit", "verify")
    assert code == 0 and out.startswith(f"audit log intact: {m.Event.objects.count()} events")


def test_a_login_updating_last_login_records_no_account_change(vera):
    start = last_id()
    client = Client(REMOTE_ADDR="192.0.2.8")
    assert client.login(username="vera", password="s3cret-pass")
    assert changes_since(start) == []
