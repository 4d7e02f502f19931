"""The engine on real Celery workers, Redis and PostgreSQL: many workers,
a worker killed mid-run, Redis restarted mid-run. Exactly once throughout:
every cluster is started once per run and every condition written once."""

import json

import pytest

from .real_services import Hub, celery_hub, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.celery]

MEMBERS = 30
RINGS = 3


def fleet_yaml(placements: int, prefix: str, *, gate: bool = False, gates: tuple[int, ...] = (),
               max_concurrency: str = "50%") -> str:
    """`placements` placements with one run each over the MEMBERS members in
    RINGS stages; an approval after ring0 (`gate`) or after each ring in `gates`."""
    docs = [
        {"apiVersion": "cluster.kubernetes-fleet.io/v1beta1", "kind": "MemberCluster",
         "metadata": {"name": f"member{i:02d}", "labels": {"ring": str(i % RINGS), "order": str(i)}}}
        for i in range(MEMBERS)
    ]
    stages = [{"name": f"ring{r}", "labelSelector": {"matchLabels": {"ring": str(r)}}, "sortingLabelKey": "order",
               "maxConcurrency": max_concurrency} for r in range(RINGS)]
    for ring in (0, *gates) if gate else gates:
        stages[ring]["afterStageTasks"] = [{"type": "Approval"}]
    docs.append({"apiVersion": "placement.kubernetes-fleet.io/v1beta1", "kind": "ClusterStagedUpdateStrategy",
                 "metadata": {"name": f"{prefix}-rings"}, "spec": {"stages": stages}})
    for i in range(placements):
        name = f"{prefix}-{i:02d}"
        docs += [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": name},
             "data": {"release": "1"}},
            {"apiVersion": "placement.kubernetes-fleet.io/v1beta1", "kind": "ClusterResourcePlacement",
             "metadata": {"name": name},
             "spec": {"resourceSelectors": [{"group": "", "version": "v1", "kind": "Namespace", "name": name}],
                      "strategy": {"type": "External"}}},
            {"apiVersion": "placement.kubernetes-fleet.io/v1beta1", "kind": "ClusterStagedUpdateRun",
             "metadata": {"name": f"{name}-run"},
             "spec": {"placementName": name, "resourceSnapshotIndex": "0", "stagedRolloutStrategyName": f"{prefix}-rings"}},
        ]
    return "\n---\n".join(json.dumps(d) for d in docs)


@pytest.fixture
def hub(tmp_path):
    with celery_hub(tmp_path) as hub:
        yield hub


def unfinished_runs(hub: Hub, prefix: str) -> int:
    return hub.sql("SELECT count(*) FROM rollouts_clusterstagedupdaterun WHERE name LIKE %s AND active", f"{prefix}-%")[0][0]


def assert_each_cluster_updated_once_per_run(hub: Hub, prefix: str, runs: int) -> None:
    outcomes = hub.sql(
        "SELECT status->'conditions' FROM rollouts_clusterstagedupdaterun WHERE name LIKE %s", f"{prefix}-%")
    assert len(outcomes) == runs
    for (conditions,) in outcomes:
        succeeded = next(c for c in conditions if c["type"] == "Succeeded")
        assert (succeeded["status"], succeeded["reason"]) == ("True", "UpdateRunSucceeded")
    for scope_type in ("Started", "Succeeded"):
        counts = hub.sql(
            "SELECT run, details->>'cluster', count(*) FROM rollouts_event WHERE run LIKE %s AND action = 'condition' "
            "AND details->>'scope' = 'cluster' AND details->>'type' = %s GROUP BY 1, 2", f"{prefix}-%", scope_type)
        assert len(counts) == runs * MEMBERS, scope_type
        assert {c for _, _, c in counts} == {1}, f"a cluster {scope_type} more than once"
    bound = hub.sql(
        "SELECT run, details->>'cluster', count(*) FROM rollouts_event WHERE run LIKE %s AND object_kind = "
        "'ClusterResourceBinding' AND reason = 'RolloutStarted' GROUP BY 1, 2", f"{prefix}-%")
    assert len(bound) == runs * MEMBERS and {c for _, _, c in bound} == {1}, "a binding was bound twice"


def test_two_workers_advance_25_runs_over_30_members_exactly_once(hub):
    # 25 runs keep both workers' four processes contending for the same runs
    # and bindings; bench/celery_engine.py measures larger loads.
    hub.worker("w1")
    hub.worker("w2")
    hub.beat()
    hub.manage("fleet", "apply", "-f", "-", stdin=fleet_yaml(25, "many"))
    wait_for(lambda: unfinished_runs(hub, "many") == 0, timeout=600, what="25 runs to finish")
    assert_each_cluster_updated_once_per_run(hub, "many", 25)
    members = hub.sql("SELECT count(*) FROM rollouts_memberobject WHERE kind = 'ConfigMap'")[0][0]
    assert members == 25 * MEMBERS
    # Workers keep their connections between tasks (hundreds of tasks ran):
    # a session per worker process and a few more (beat, `fleet apply`,
    # connections recycled at CONN_MAX_AGE), not one per task.
    sessions = hub.database_sessions() - hub.sql_sessions
    print(f"database sessions besides the test's own: {sessions}")
    assert sessions <= 30, f"{sessions} database sessions: are workers opening one per task?"


def test_a_worker_killed_mid_run_leaves_nothing_done_twice(hub):
    doomed = hub.worker("doomed")
    hub.worker("survivor")
    hub.beat()
    hub.manage("fleet", "apply", "-f", "-", stdin=fleet_yaml(20, "kill"))
    started = "SELECT count(*) FROM rollouts_event WHERE run LIKE 'kill-%%' AND details->>'type' = 'Started'"
    wait_for(lambda: hub.sql(started)[0][0] >= 60, timeout=120, what="the runs to be under way")
    hub.kill(doomed)
    wait_for(lambda: unfinished_runs(hub, "kill") == 0, timeout=600, what="20 runs to finish without the killed worker")
    assert_each_cluster_updated_once_per_run(hub, "kill", 20)


def test_a_redis_restart_mid_run_loses_no_approval(hub):
    # The approvals' wake-ups are lost with Redis: only beat's safety-net
    # sweep over the active runs moves those runs again, every 3 s here
    # rather than production's 15 s, which the test would mostly wait on.
    hub.env.update(FLEET_ACTIVE_RUNS_SWEEP_SECONDS="3")
    hub.worker("w1")
    hub.worker("w2")
    hub.beat()
    hub.manage("fleet", "apply", "-f", "-", stdin=fleet_yaml(10, "gate", gate=True))
    requests = "SELECT count(*) FROM rollouts_clusterapprovalrequest WHERE name LIKE 'gate-%%'"
    wait_for(lambda: hub.sql(requests)[0][0] == 10, timeout=120, what="10 approval requests")
    # Redis goes down; release managers approve all ten meanwhile (through the
    # service, as the CLI and the web do): their wake-ups cannot be sent.
    hub.redis.kill()
    hub.shell(
        "from rollouts import models as m\n"
        "from rollouts.api.kinds import KindRegistry\n"
        "from rollouts.services.approvals import approval_request_approve\n"
        "kind = KindRegistry().resolve('careq')\n"
        "for r in m.ClusterApprovalRequest.objects.filter(name__startswith='gate-'):\n"
        "    approval_request_approve(kind=kind, name=r.name, namespace='', actor='release-manager')\n"
    )
    hub.redis.start()
    wait_for(lambda: unfinished_runs(hub, "gate") == 0, timeout=180, what="the approved runs to finish after the restart")
    accepted = hub.sql(
        "SELECT count(*) FROM rollouts_clusterapprovalrequest, jsonb_array_elements(status->'conditions') c "
        "WHERE name LIKE 'gate-%%' AND c->>'type' = 'ApprovalAccepted' AND c->>'status' = 'True'")[0][0]
    assert accepted == 10
    assert_each_cluster_updated_once_per_run(hub, "gate", 10)
