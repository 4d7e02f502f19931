"""A KubeFleet hub kept mirrored by real Celery processes: beat starts the
sync chain, a worker on the `hubs` queue runs the sessions (as the Procfile's
`hubs` line does), PostgreSQL holds the mirror, and the hub is
tests/fake_kube.py on loopback, spoken to by the official client."""

import json

import pytest

from tests.fake_kube import FLEET, tutorial_approval_request, tutorial_hub, tutorial_run_status

from .real_services import Hub, celery_hub, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.celery]


@pytest.fixture
def services(tmp_path):
    # Sessions hand over every 2 s: the chain is exercised.
    with celery_hub(tmp_path, FLEET_HUB_SESSION_SECONDS="2") as services:
        yield services


def count(services: Hub, table: str, name: str) -> int:
    return services.sql(f"SELECT count(*) FROM rollouts_{table} WHERE name = %s", name)[0][0]


def test_beat_and_a_hubs_worker_keep_a_kubefleet_hub_mirrored_and_approvals_reach_it(services, fake):
    tutorial_hub(fake)
    services.shell(
        "from rollouts.mirror.actions import credential_save\n"
        "from rollouts.models.connections import HubConnection\n"
        f"credential_save(HubConnection(name='prod-hub'), kubeconfig={json.dumps(fake.kubeconfig())}, actor='ada')\n")
    services.worker("engine")  # the default queues: beat's hub_connections_sync lands there
    services.start("worker", "-Q", "hubs", "--concurrency", "1", "-n", "hubs@%h", "--without-gossip",
                   "--without-mingle", "--loglevel", "WARNING", name="hubs")
    services.beat(FLEET_HUB_SYNC_SECONDS="2")  # beat's first sync-hubs comes one interval after it starts
    wait_for(lambda: count(services, "clusterstagedupdaterun", "example-run") == 1, timeout=120,
             what="beat to start a hub session that mirrors the run")

    # Sessions last 2 s and chain on: what the hub's controller does later arrives too.
    run = fake.get(f"{FLEET}/v1beta1", "ClusterStagedUpdateRun", "example-run")
    fake.put({**run, "status": tutorial_run_status("canary-waiting")})
    fake.put(tutorial_approval_request())
    wait_for(lambda: count(services, "clusterapprovalrequest", "example-run-canary") == 1, timeout=60,
             what="a later session to mirror the new approval request")

    services.shell(
        "from rollouts.api.kinds import KindRegistry\n"
        "from rollouts.services.approvals import approval_request_approve\n"
        "approval_request_approve(kind=KindRegistry().resolve('careq'), name='example-run-canary', namespace='',\n"
        "                         actor='rita', message='canary healthy', via='web')\n")
    [patch] = fake.requests_to("PATCH")
    assert patch.path.endswith("/clusterapprovalrequests/example-run-canary/status")
    assert patch.body["status"]["conditions"][0]["message"] == "canary healthy (approved by rita in Fleet UI)"
    approved = services.sql("SELECT actor, details->>'via' FROM rollouts_event WHERE action = 'approved'")
    assert approved == [("rita", "web")]
    sessions = services.sql("SELECT last_sync IS NOT NULL, failures FROM rollouts_hubconnection")
    assert sessions == [(True, 0)]
