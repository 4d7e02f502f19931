import pytest

from rollouts import models as m
from rollouts.api.errors import Forbidden
from rollouts.engine.loop import engine_tick
from rollouts.mirror import hub_sync
from rollouts.mirror.actions import credential_save
from rollouts.models.connections import HubConnection
from rollouts.services.approvals import approval_request_approve
from rollouts.services.runs import run_stop
from tests.fake_kube import tutorial_approval_request, tutorial_hub
from tests.fleet_builders import kind, patch


def test_mirrored_objects_are_left_alone_and_written_on_the_hub(db, fake):
    hub = credential_save(HubConnection(name="prod-hub"), kubeconfig=fake.kubeconfig(), actor="ada")
    tutorial_hub(fake)
    fake.put(tutorial_approval_request())
    hub_sync(connection_id=hub.pk, seconds=0.5)
    run = m.ClusterStagedUpdateRun.objects.get()
    before = (run.status, run.resource_version)

    engine_tick()
    engine_tick()

    run.refresh_from_db()
    assert (run.status, run.resource_version) == before
    assert not m.ClusterResourceBinding.objects.exists()
    assert m.ClusterResourceSnapshot.objects.count() == 1
    with pytest.raises(Forbidden, match="mirrored from hub prod-hub"):
        patch("csur", "example-run", {"metadata": {"labels": {"x": "y"}}})
    request, changed = approval_request_approve(kind=kind("careq"), name="example-run-canary", namespace="",
                                                actor="alice", message="lgtm", via="web")
    assert changed and fake.requests_to("PATCH", "/status")
    run_stop(name="example-run", actor="olivia")
    assert fake.requests_to("PATCH")[-1].body == {"spec": {"state": "Stop"}}
