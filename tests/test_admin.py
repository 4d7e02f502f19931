"""The Django admin: every hub model is browsable, and edits go through the
services (versioned, audited, refused when stale) rather than a bare save."""

import json

import pytest
from django.contrib import admin
from django.urls import reverse

from rollouts import models as m
from rollouts.demo import load_demo

pytestmark = pytest.mark.django_db

REGISTERED = [*m.FLEET_MODELS, m.HubResource, m.MemberObject, m.Event]


def url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def demo_fleet():
    load_demo()
    m.MemberObject.objects.create(
        cluster="member1", kind="ConfigMap", namespace="test-namespace", name="test-cm",
        manifest={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "test-cm"}},
        placement="example-placement", resource_snapshot="example-placement-0-snapshot",
        applied_at=m.Event.objects.first().time,
    )  # fmt: skip


def test_every_hub_model_is_registered():
    assert all(admin.site.is_registered(model) for model in REGISTERED)


@pytest.mark.parametrize("model", REGISTERED, ids=lambda model: model.__name__)
def test_the_changelist_of_every_model_loads_for_a_superuser(admin_client, demo_fleet, model):
    assert admin_client.get(url(model, "changelist")).status_code == 200
    assert admin_client.get(url(model, "changelist"), {"q": "example"}).status_code == 200


def test_objects_are_created_with_apply_not_in_the_admin(admin_client):
    assert admin_client.get(url(m.ClusterResourcePlacement, "add")).status_code == 403
    assert admin_client.get(url(m.Event, "add")).status_code == 403


def change_form(crp, **overrides) -> dict:
    form = {
        "labels": json.dumps(crp.labels),
        "annotations": json.dumps(crp.annotations),
        "spec": json.dumps(crp.spec),
        "loaded_resource_version": str(crp.resource_version),
        "_save": "Save",
    }
    return {**form, **overrides}


def test_an_admin_edit_is_versioned_and_audited(admin_client, admin_user, demo_fleet):
    crp = m.ClusterResourcePlacement.objects.get()
    change = url(m.ClusterResourcePlacement, "change", crp.pk)
    assert admin_client.get(change).status_code == 200
    response = admin_client.post(change, change_form(crp, labels='{"team": "a"}'))
    assert response.status_code == 302
    edited = m.ClusterResourcePlacement.objects.get()
    assert (edited.labels, edited.generation) == ({"team": "a"}, 1)
    assert edited.resource_version > crp.resource_version
    event = m.Event.objects.filter(object_name="example-placement").last()
    assert (event.actor, event.action) == (admin_user.username, "patched")


def test_an_admin_edit_on_a_stale_page_is_refused(admin_client, demo_fleet):
    crp = m.ClusterResourcePlacement.objects.get()
    stale = change_form(
        crp, labels='{"team": "b"}', loaded_resource_version=str(crp.resource_version - 1)
    )
    response = admin_client.post(url(m.ClusterResourcePlacement, "change", crp.pk), stale)
    assert response.status_code == 200
    assert "changed by someone else" in response.content.decode()
    assert m.ClusterResourcePlacement.objects.get().labels == {}


def test_deleting_in_the_admin_cascades_like_fleet_delete(admin_client, demo_fleet):
    namespace = m.HubResource.objects.get(kind="Namespace")
    response = admin_client.post(url(m.HubResource, "delete", namespace.pk), {"post": "yes"})
    assert response.status_code == 302
    assert not m.HubResource.objects.filter(kind="ConfigMap").exists()


def test_events_are_read_only(admin_client, demo_fleet):
    event = m.Event.objects.first()
    page = admin_client.get(url(m.Event, "change", event.pk))
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert admin_client.post(url(m.Event, "delete", event.pk), {"post": "yes"}).status_code == 403
