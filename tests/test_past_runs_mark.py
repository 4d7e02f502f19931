"""The mark of a placement's finished runs (models.updaterun.UpdateRunQuerySet.
past_runs_marks): what the ETA remembers what it learned from them under, so a
run page's push reads them only when they change. It must change whenever
they do, and only then; the same checks on SQLite (in process) and on
PostgreSQL (a manage.py process)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from rollouts import clock
from rollouts import models as m

from .real_services import check_on_postgresql


def check_past_runs_marks() -> None:
    """Runs of both kinds; raises AssertionError."""
    now = clock.now()

    def run(name, placement="p", *, active=False, model=m.ClusterStagedUpdateRun, namespace=""):
        return model.objects.create(name=name, namespace=namespace, creation_timestamp=now, active=active,
                                    spec={"placementName": placement})

    def mark(placement="p"):
        return m.ClusterStagedUpdateRun.objects.past_runs_marks({("", placement)}).get(("", placement))

    run("watched", active=True)
    assert mark() is None  # no finished run yet
    marks = []

    def changed() -> bool:
        marks.append(mark())
        return len(marks) == 1 or marks[-1] != marks[-2]

    first = run("first")
    assert changed() and marks[-1][:2] == (1, first.resource_version)
    run("second")
    assert changed() and marks[-1][0] == 2
    first.labels = {"seen": "yes"}
    first.save()
    assert changed()  # a finished run rewritten
    run("other", placement="q")
    run("still-going", active=True)
    run("elsewhere", "p", model=m.StagedUpdateRun, namespace="team-a")
    m.ClusterStagedUpdateRun.objects.filter(name="watched").update(status={"conditions": []})
    assert not changed()  # another placement's run, an active run, a namespaced run, the run itself
    m.ClusterStagedUpdateRun.objects.get(name="second").delete()
    assert changed() and marks[-1][:2] == (1, first.resource_version)
    # Several placements in one query; namespaced runs by their own namespace.
    run("done", "p", model=m.StagedUpdateRun, namespace="team-b")
    run("again", "p", model=m.StagedUpdateRun, namespace="team-b")
    both = m.StagedUpdateRun.objects.past_runs_marks({("team-a", "p-elsewhere"), ("team-a", "p"), ("team-b", "p")})
    assert {key: mark[0] for key, mark in both.items()} == {("team-a", "p"): 1, ("team-b", "p"): 2}
    assert m.ClusterStagedUpdateRun.objects.past_runs_marks({("", "p"), ("", "q")}).keys() == {("", "p"), ("", "q")}
    assert m.ClusterStagedUpdateRun.objects.past_runs_marks({("", 'o\'dd "name"')}) == {}


@pytest.mark.django_db
def test_the_mark_changes_with_the_placements_finished_runs_on_sqlite():
    check_past_runs_marks()


@pytest.mark.django_db
def test_no_placement_no_query():
    with CaptureQueriesContext(connection) as queries:
        assert m.ClusterStagedUpdateRun.objects.past_runs_marks(set()) == {}
    assert not queries.captured_queries


@pytest.mark.slow
def test_the_mark_changes_with_the_placements_finished_runs_on_postgresql():
    check_on_postgresql("tests.test_past_runs_mark", "check_past_runs_marks")
