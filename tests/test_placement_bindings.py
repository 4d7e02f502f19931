"""The bindings cache (controllers/bindings.py): each binding decoded once
per version, and never a version that rolled back taken for a later one."""

import pytest
from django.db import transaction

from rollouts import models as m
from rollouts.api import store
from rollouts.controllers.bindings import placement_bindings
from rollouts.controllers.family import CLUSTER

from . import fleet_builders as fb
from .real_services import check_on_postgresql

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


def check_bindings_cache() -> None:
    """Raises AssertionError. On PostgreSQL the read takes the versions first
    and the documents of changed bindings only."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    fb.tutorial_fleet()
    names = sorted(m.ClusterResourceBinding.objects.values_list("name", flat=True))
    first = statuses()
    with CaptureQueriesContext(connection) as unchanged:
        second = statuses()
    assert all(first[name][1] is second[name][1] for name in first)

    with transaction.atomic():  # an engine advance reads its own writes, then rolls back
        write_status(names[0], "rolled back")
        assert statuses()[names[0]][1]["note"] == "rolled back"
        transaction.set_rollback(True)
    assert "note" not in statuses()[names[0]][1]
    write_status(names[0], "committed")
    with CaptureQueriesContext(connection) as changed:
        third = statuses()
    assert third[names[0]][1]["note"] == "committed"
    assert all(third[name][1] is first[name][1] for name in names[1:])
    if connection.vendor == "postgresql":
        documents = [q["sql"] for q in changed.captured_queries if "spec" in q["sql"] and "binding" in q["sql"]]
        assert len(documents) == 1 and "ANY" in documents[0], documents
        assert not [q for q in unchanged.captured_queries if "status" in q["sql"] and "binding" in q["sql"]]


def test_the_cache_holds_on_sqlite(frozen_clock):
    check_bindings_cache()


@pytest.mark.slow
def test_the_cache_holds_on_postgresql():
    check_on_postgresql("tests.test_placement_bindings", "check_bindings_cache")


def check_placement_status_memo() -> None:
    """Raises AssertionError. A placement sync takes the placement's status
    from the one this process last wrote at the same version (PostgreSQL),
    and reads it again once another writer changed it."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from rollouts.controllers.placement import placement_status_refresh, placements_with_status

    fb.tutorial_fleet()
    query = m.ClusterResourcePlacement.objects.filter(name=fb.placement_obj().name)
    placement = placements_with_status(query)[0]
    assert placement.status == m.ClusterResourcePlacement.objects.get(pk=placement.pk).status
    write_status(sorted(m.ClusterResourceBinding.objects.values_list("name", flat=True))[0], "applied")
    placement_status_refresh(placement, CLUSTER)
    written = placement.status
    with CaptureQueriesContext(connection) as queries:
        again = placements_with_status(query)[0]
    assert again.status == written
    if connection.vendor == "postgresql":
        assert again.status is written and len(queries.captured_queries) == 1, queries.captured_queries
    other = m.ClusterResourcePlacement.objects.get(pk=placement.pk)  # another writer
    other.status = {**other.status, "observedResourceIndex": "7"}
    store.save(other, spec_changed=False)
    assert placements_with_status(query)[0].status["observedResourceIndex"] == "7"


def test_the_placement_status_memo_on_sqlite(frozen_clock):
    check_placement_status_memo()


@pytest.mark.slow
def test_the_placement_status_memo_on_postgresql():
    check_on_postgresql("tests.test_placement_bindings", "check_placement_status_memo")
