"""Freezes on a mirrored KubeFleet hub (the fake hub of tests/fake_kube.py):
the hub's controller drives its runs, so a freeze stops them there
(spec.state Stop), records which, and resumes exactly those afterwards."""

import pytest

from rollouts import models as m
from rollouts.mirror.freezes import mirrored_runs_enforce
from rollouts.services.freezes import freeze_create, freeze_end
from tests.fake_kube import FLEET
from tests.test_mirror_actions import mirrored

RUN_PATH = f"/apis/{FLEET}/v1beta1/clusterstagedupdateruns/example-run"


def state_patches(fake):
    return [p.body["spec"]["state"] for p in fake.requests_to("PATCH") if p.path == RUN_PATH]


def test_a_freeze_stops_the_hubs_running_runs_and_resumes_them_after(fake, hub):
    mirrored(fake, hub)
    freeze_create(name="xmas", reason="holidays", actor="ada")

    assert mirrored_runs_enforce() == (1, 0)
    assert mirrored_runs_enforce() == (0, 0)  # stopped once, however often the tick looks
    assert state_patches(fake) == ["Stop"]
    stop = m.FreezeStop.objects.get()
    assert (stop.freeze.name, stop.run_name) == ("xmas", "example-run")
    assert m.ClusterStagedUpdateRun.objects.get().spec["state"] == "Stop"

    freeze_end(name="xmas", actor="ada")
    assert mirrored_runs_enforce() == (0, 1)
    assert state_patches(fake) == ["Stop", "Run"]
    assert not m.FreezeStop.objects.exists()
    timeline = list(m.Event.objects.filter(run="example-run", action=m.Event.Action.STATE_CHANGED)
                    .values_list("actor", "details__changes"))
    assert timeline == [("system:freeze/xmas", {"spec.state": ["Run", "Stop"]}),
                        ("system:freeze/xmas", {"spec.state": ["Stop", "Run"]})]


def test_a_run_a_person_stopped_is_not_resumed_by_the_freeze(fake, hub):
    mirrored(fake, hub, run_state="Stop")
    freeze_create(name="xmas", reason="holidays", actor="ada")
    mirrored_runs_enforce()
    freeze_end(name="xmas", actor="ada")
    mirrored_runs_enforce()
    assert state_patches(fake) == []


def test_a_freeze_on_other_placements_leaves_the_hubs_runs_alone(fake, hub):
    mirrored(fake, hub)
    freeze_create(name="prod-only", reason="incident", actor="ada", selector="env=prod")
    assert mirrored_runs_enforce() == (0, 0)
    assert state_patches(fake) == []


def test_a_run_held_by_a_second_freeze_stays_stopped_when_the_first_ends(fake, hub):
    mirrored(fake, hub)
    freeze_create(name="xmas", reason="holidays", actor="ada")
    mirrored_runs_enforce()
    freeze_create(name="incident", reason="payments down", actor="ada")
    freeze_end(name="xmas", actor="ada")
    assert mirrored_runs_enforce() == (0, 0)
    assert m.FreezeStop.objects.get().freeze.name == "incident"
    freeze_end(name="incident", actor="ada")
    assert mirrored_runs_enforce() == (0, 1)
    assert state_patches(fake) == ["Stop", "Run"]


@pytest.mark.django_db
def test_without_freezes_or_stops_nothing_is_read_but_two_tables(django_assert_max_num_queries):
    with django_assert_max_num_queries(2):
        assert mirrored_runs_enforce() == (0, 0)
