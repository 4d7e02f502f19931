"""Members' labels as the engine reads them (controllers.bindings.member_labels):
decoded once per text, and never stale."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from rollouts import clock
from rollouts import models as m
from rollouts.controllers.bindings import member_labels


@pytest.mark.django_db
def test_labels_follow_every_change_and_unchanged_ones_are_the_same_objects():
    now = clock.now()
    for name in ("a", "b"):
        m.MemberCluster.objects.create(name=name, labels={"env": name}, creation_timestamp=now)
    first = member_labels(["a", "b", "gone"])
    assert first == {"a": {"env": "a"}, "b": {"env": "b"}}
    m.MemberCluster.objects.filter(name="a").update(labels={"env": "prod"})
    again = member_labels(None)
    assert again == {"a": {"env": "prod"}, "b": {"env": "b"}}
    assert again["b"] is first["b"]  # decoded once while its text stays


@pytest.mark.django_db
def test_no_name_no_query():
    with CaptureQueriesContext(connection) as queries:
        assert member_labels([]) == {}
    assert not queries.captured_queries
