"""The mark of a placement's finished runs (models.updaterun.UpdateRunQuerySet.
with_past_runs_mark): what a run page's ETA remembers what it learned under,
so a push asks no query for the past runs until they change. It must change
whenever they do, and only then; the same checks on SQLite (in process) and
on PostgreSQL (a manage.py process)."""

import subprocess
import sys

import pytest

from rollouts import clock
from rollouts import models as m

from .real_services import ROOT, postgres_database, process_env


def check_past_runs_mark() -> None:
    """Runs of both kinds; raises AssertionError."""
    now = clock.now()

    def run(name, placement="p", *, active=False, model=m.ClusterStagedUpdateRun, namespace=""):
        return model.objects.create(name=name, namespace=namespace, creation_timestamp=now, active=active,
                                    spec={"placementName": placement})

    def mark(name="watched", model=m.ClusterStagedUpdateRun, namespace=""):
        run = model.objects.with_past_runs_mark().get(name=name, namespace=namespace)
        return run.past_runs_count, run.past_runs_last

    run("watched", active=True)
    marks = [mark()]
    assert marks[0] == (0, None)  # no finished run yet

    def changed() -> bool:
        marks.append(mark())
        return marks[-1] != marks[-2]

    first = run("first")
    assert changed() and marks[-1][0] == 1 and marks[-1][1].endswith(f"@{first.resource_version}")
    run("second")
    assert changed() and marks[-1][0] == 2
    first.labels = {"seen": "yes"}
    first.save()
    assert changed()  # a finished run rewritten
    run("other", placement="q")
    run("still-going", active=True)
    m.ClusterStagedUpdateRun.objects.filter(name="watched").update(status={"conditions": []})
    assert not changed()  # another placement's run, an active run, the run itself
    m.ClusterStagedUpdateRun.objects.get(name="second").delete()
    assert changed() and marks[-1][0] == 1 and marks[-1][1].endswith(f"@{first.resource_version}")
    # Namespaced runs: only their own namespace's placement counts.
    run("watched", "p", active=True, model=m.StagedUpdateRun, namespace="team-a")
    run("done", "p", model=m.StagedUpdateRun, namespace="team-a")
    run("done", "p", model=m.StagedUpdateRun, namespace="team-b")
    assert mark(model=m.StagedUpdateRun, namespace="team-a")[0] == 1


@pytest.mark.django_db
def test_the_mark_changes_with_the_placements_finished_runs_on_sqlite():
    check_past_runs_mark()


@pytest.mark.slow
def test_the_mark_changes_with_the_placements_finished_runs_on_postgresql():
    url, drop = postgres_database()
    try:
        done = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c",
             "from tests.test_past_runs_mark import check_past_runs_mark; check_past_runs_mark()"],
            cwd=ROOT, env=process_env(DATABASE_URL=url), capture_output=True, text=True, timeout=120)
    finally:
        drop()
    assert done.returncode == 0, done.stderr
