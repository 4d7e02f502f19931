"""A run page's push carries only what changed (issue 16, rollouts/fragments.py):
one cluster's cell or a small stage's table, the stage's head, the strip,
the facts; a whole stage when its shape changes, the whole timeline when the
page's does. Each delta names the version it applies to; what was pushed is
remembered per group, in Redis across engine processes.

Runs are written as status JSON (tests/map_builders.py), each change bumping
the run's resource version as a write does."""

import re
from types import SimpleNamespace

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from rollouts import broadcast, fragment_memory, fragments
from rollouts.selectors.timeline import ClusterView
from tests.map_builders import FAILED, SUCCEEDED, big_run
from tests.real_services import RedisServer

TOP_LEVEL_ID = re.compile(r'<(\w+) [^>]*?\bid="([^"]+)"[^>]*\bhx-swap-oob="true"')


def push(run, audience: str = "view") -> str:
    return broadcast.render_run_push(run.KIND, run.pk, [audience])[audience]


def pushed_ids(html: str) -> list[str]:
    """The ids of the out-of-band elements a push replaces, in order."""
    return [found.group(2) for found in TOP_LEVEL_ID.finditer(html)]


def change(run, stage: int, cluster: int, conditions) -> None:
    """Cluster `cluster` of stage `stage` (1-based) gets these conditions: a write."""
    status = run.status
    status["stagesStatus"][stage - 1]["clusters"][cluster]["conditions"] = conditions
    run.status, run.resource_version = status, run.resource_version + 1
    run.save()


@pytest.fixture
def updating(frozen_clock):
    """Three stages of 40: the first done, the second updating (m2-0 failed,
    m2-1..3 updating, the rest pending); the page was pushed once."""
    run = big_run(stages=3, per_stage=40, done_stages=1)
    push(run)
    return run


# What a delta carries --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_first_push_to_a_page_is_the_whole_timeline(frozen_clock):
    run = big_run(stages=3, per_stage=40, done_stages=1)
    html = push(run)
    assert '<section id="timeline"' in html and not html.startswith("<!--live-delta")


@pytest.mark.django_db
def test_a_cluster_finishing_pushes_only_its_cell_its_stage_head_and_the_run_parts_that_changed(updating):
    version = updating.resource_version
    change(updating, 2, 1, SUCCEEDED)
    html = push(updating)
    assert html.startswith(f"<!--live-delta base={version} version={version + 1}-->")
    ids = pushed_ids(html)
    assert [i for i in ids if i.startswith("cell-")] == ["cell-2-m2-1"]
    assert 'class="cell cell-succeeded" id="cell-2-m2-1"' in html
    assert {"stage-2-head", "run-strip", "run-facts"} <= set(ids)
    assert set(ids) <= {"cell-2-m2-1", "stage-2-head", "run-strip", "run-facts", "run-sentence", "run-rest"}
    assert '<section id="timeline"' not in html and len(html) < 20_000


@pytest.mark.django_db
def test_nothing_changed_pushes_only_what_moves_with_the_clock(updating):
    updating.resource_version += 1
    updating.save()
    assert {i for i in pushed_ids(push(updating))} <= {"run-facts", "run-strip"}


@pytest.mark.django_db
def test_a_failing_cluster_updates_the_only_failing_count_not_its_checkbox(updating):
    change(updating, 2, 2, FAILED)
    html = push(updating)
    assert '<span id="failing-count" hx-swap-oob="true">(2)</span>' in html
    assert 'id="only-failing"' not in html


@pytest.mark.django_db
def test_a_small_stage_pushes_its_table_when_a_row_changes(frozen_clock):
    run = big_run(stages=2, per_stage=10, done_stages=0)  # tables of 10 rows show on the page
    push(run)
    change(run, 1, 5, SUCCEEDED)
    html = push(run)
    ids = pushed_ids(html)
    assert "cell-1-m1-5" in ids and ids.count("table-1") == 1 and "table-2" not in ids
    assert '<details class="cluster-table" id="table-1" open hx-swap-oob="true">' in html


@pytest.mark.django_db
def test_a_stage_that_changes_state_is_pushed_whole(updating):
    status = updating.status
    stage = status["stagesStatus"][1]
    for cluster in stage["clusters"]:
        cluster["conditions"] = SUCCEEDED
    stage.update(endTime=stage["startTime"], conditions=[
        *stage["conditions"], {**SUCCEEDED[1], "type": "Succeeded", "reason": "StageUpdatingSucceeded"}])
    updating.status, updating.resource_version = status, updating.resource_version + 1
    updating.save()
    ids = pushed_ids(push(updating))
    assert "stage-2" in ids and "stage-2-head" not in ids
    assert not [i for i in ids if i.startswith("cell-")]  # they came inside the stage


@pytest.mark.django_db
def test_a_deletion_stage_that_changes_is_pushed_whole_and_alone(frozen_clock):
    run = big_run(stages=2, per_stage=40, done_stages=1, deletion=3)
    push(run)
    status = run.status
    status["deletionStageStatus"]["clusters"][0]["conditions"] = []
    run.status, run.resource_version = status, run.resource_version + 1
    run.save()
    ids = pushed_ids(push(run))
    assert "stage-deletion" in ids and not [i for i in ids if i.startswith("cell-") or i.startswith("stage-1")]


@pytest.mark.django_db
def test_a_run_that_finishes_gets_the_whole_timeline_which_no_longer_polls(updating):
    updating.active, updating.resource_version = False, updating.resource_version + 1
    updating.save()
    html = push(updating)
    assert html.lstrip().startswith('<section id="timeline"') and "hx-trigger=" not in html.split(">", 1)[0]


@pytest.mark.django_db
def test_each_audience_diffs_against_what_it_was_sent(updating):
    assert '<section id="timeline"' in push(updating, "manage")  # never pushed to release managers yet
    change(updating, 2, 1, SUCCEEDED)
    pushes = broadcast.render_run_push(updating.KIND, updating.pk, ["view", "manage"])
    assert all(html.startswith("<!--live-delta") for html in pushes.values())
    assert "cell-2-m2-1" in pushes["view"] and "cell-2-m2-1" in pushes["manage"]


@pytest.mark.django_db
def test_a_socket_that_connects_gets_the_whole_timeline_and_resets_nothing(updating):
    group = broadcast.run_group(updating.KIND, updating.pk, "view")
    remembered = fragment_memory.memory().load(group)
    html = broadcast.render_run(updating.KIND, updating.pk, ["view"])["view"]  # what RunConsumer sends first
    assert '<section id="timeline"' in html
    assert fragment_memory.memory().load(group) == remembered


# Fingerprints ---------------------------------------------------------------------------------


def test_a_page_state_survives_its_json():
    state = fragments.PageState(7, "abcd", {"run-facts": "00ff00ff"}, {"1": "00000001ffffffff"})
    assert fragments.PageState.from_json(state.to_json()) == state


@pytest.mark.django_db
def test_process_memory_forgets_the_least_recently_pushed_group_first():
    memory = fragment_memory.ProcessMemory(size=2)
    for group in ("a", "b", "c"):
        memory.save(group, fragments.PageState(1, "s", {}, {}))
    assert memory.load("a") is None and memory.load("c") is not None


@pytest.mark.slow  # starts a redis-server: not in `make test-fast`
@pytest.mark.django_db
def test_two_engine_processes_diff_against_what_either_of_them_pushed_last(updating, tmp_path, monkeypatch):
    redis = RedisServer(tmp_path).start()
    try:
        first, second = fragment_memory.RedisMemory(redis.url), fragment_memory.RedisMemory(redis.url)
        monkeypatch.setattr(fragment_memory, "memory", lambda: first)
        assert '<section id="timeline"' in push(updating)  # nothing in Redis yet
        version = updating.resource_version
        change(updating, 2, 1, SUCCEEDED)
        monkeypatch.setattr(fragment_memory, "memory", lambda: second)  # another worker pushes the next change
        html = push(updating)
        assert html.startswith(f"<!--live-delta base={version} version={version + 1}-->")
        assert [i for i in pushed_ids(html) if i.startswith("cell-")] == ["cell-2-m2-1"]
        group = broadcast.run_group(updating.KIND, updating.pk, "view")
        assert first.load(group).version == version + 1
        assert 0 < first.client.ttl(fragment_memory.KEY_PREFIX + group) <= fragment_memory.TTL_SECONDS
    finally:
        redis.kill()


# Bounded --------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("per_stage", [4, 100])
def test_a_push_reads_the_same_few_queries_for_40_or_1000_clusters(frozen_clock, per_stage):
    run = big_run(stages=10, per_stage=per_stage, done_stages=5, gate_after=3)
    push(run)
    change(run, 6, 3, SUCCEEDED)
    with CaptureQueriesContext(connection) as queries:
        html = push(run)
    assert html.startswith("<!--live-delta")
    # The run; its timeline: approval requests, approvers' events, approval
    # policies, health checks, the placement's status, the run's events; the
    # ETA: the placement's past runs. None per cluster or stage.
    assert len(queries) == 8, [q["sql"][:80] for q in queries]


def test_only_the_cells_whose_fingerprint_changed_are_sent_and_all_without_a_base():
    views = [ClusterView(f"m{i}", "pending", None, None, "", "") for i in range(5)]
    stage = SimpleNamespace(clusters=views)
    before = fragments._cell_prints(stage)
    views[3] = ClusterView("m3", "updating", None, None, "", "")
    after = fragments._cell_prints(stage)
    assert fragments._changed_cells(before, before, stage, 1) == []
    assert [pushed_ids(html) for html in fragments._changed_cells(before, after, stage, 1)] == [["cell-1-m3"]]
    assert len(fragments._changed_cells("", after, stage, 1)) == 5  # nothing remembered of this stage
