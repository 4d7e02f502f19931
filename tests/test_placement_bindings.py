"""The bindings cache (controllers/bindings.py): each binding decoded once
per version, and never a version that rolled back taken for a later one."""

import pytest
from django.db import transaction

from rollouts import models as m
from rollouts.api import store
from rollouts.controllers.bindings import placement_bindings
from rollouts.controllers.family import CLUSTER

from . import fleet_builders as fb

pytestmark = pytest.mark.django_db


def statuses() -> dict:
    placement = fb.placement_obj()
    return {row["name"]: (row["resource_version"], row["status"]) for row in placement_bindings(CLUSTER, placement)}


def write_status(name: str, note: str) -> None:
    binding = m.ClusterResourceBinding.objects.get(name=name)
    binding.status = {**(binding.status or {}), "note": note}
    store.save(binding, spec_changed=False)


def test_a_version_read_before_a_rollback_is_not_taken_for_a_later_write_that_drew_the_same_number(frozen_clock):
    fb.tutorial_fleet()
    name = m.ClusterResourceBinding.objects.order_by("name").values_list("name", flat=True).first()
    statuses()
    with transaction.atomic():  # an engine advance reads its own writes, then rolls back
        write_status(name, "rolled back")
        rolled_back = statuses()[name]
        transaction.set_rollback(True)
    write_status(name, "committed")
    version, status = statuses()[name]
    assert version == rolled_back[0], "SQLite's counter rolled back: the number is drawn again"
    assert status["note"] == "committed"


def test_an_unchanged_binding_is_decoded_once(frozen_clock):
    fb.tutorial_fleet()
    first, second = statuses(), statuses()
    assert all(first[name][1] is second[name][1] for name in first)
