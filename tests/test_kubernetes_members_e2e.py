"""After /tmp/issue7-proposed.patch: the tutorial through the engine with member2 a
real (fake) Kubernetes member whose Deployment becomes available later."""


from rollouts import models as m
from rollouts.members import KUBECONFIG_ANNOTATION
from rollouts.mirror.actions import credential_save
from rollouts.models.connections import MemberCredential
from tests.fleet_builders import (
    apply,
    patch,
    settle,
    tutorial_fleet,
    tutorial_run,
    tutorial_strategy,
)

DEPLOYMENT = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "test-namespace"},
              "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                       "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                           {"name": "web", "image": "nginx:1.27"}]}}}}


def cluster(name):
    run = m.ClusterStagedUpdateRun.objects.get(name="example-run")
    for stage in run.status.get("stagesStatus") or []:
        for c in stage.get("clusters") or []:
            if c["clusterName"] == name:
                return {x["type"]: x["status"] for x in c.get("conditions") or []}
    return None


def binding_conditions(name):
    b = m.ClusterResourceBinding.objects.get(target_cluster=name)
    return {c["type"]: (c["status"], c["reason"]) for c in b.status["conditions"]}


def test_a_real_member_holds_the_run_until_its_deployment_is_available(db, fake, frozen_clock):
    credential_save(MemberCredential(name="member2-kubeconfig"), kubeconfig=fake.kubeconfig(), actor="ada")
    tutorial_fleet()
    patch("membercluster", "member2", {"metadata": {"annotations": {KUBECONFIG_ANNOTATION: "member2-kubeconfig"}}})
    apply([DEPLOYMENT])  # snapshot 2: value2 and the Deployment
    tutorial_strategy()
    tutorial_run(index="2")
    settle()

    assert fake.get("v1", "ConfigMap", "test-cm", "test-namespace")["data"] == {"key": "value2"}
    assert binding_conditions("member2")["Available"] == ("False", "ResourceNotAvailableYet")
    assert cluster("member2") == {"Started": "True"}
    live = fake.get("apps/v1", "Deployment", "web", "test-namespace")
    fake.put({**live, "status": {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2,
                                 "availableReplicas": 2}})  # the member's controller is done
    frozen_clock.advance(5)
    settle()

    assert cluster("member2")["Succeeded"] == "True"
    assert [r.path for r in fake.requests_to("PATCH")][:3] == [
        "/api/v1/namespaces/test-namespace", "/api/v1/namespaces/test-namespace/configmaps/test-cm",
        "/apis/apps/v1/namespaces/test-namespace/deployments/web"]
