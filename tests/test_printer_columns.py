"""`fleet get` tables come from the CRDs' additionalPrinterColumns (issue 20),
with the seed tutorial's legacy columns where compatibility.md keeps them."""

from datetime import UTC, datetime

import pytest

from rollouts import models as m
from rollouts.api import jsonpath
from rollouts.api.columns import columns_for, printed
from rollouts.api.kinds import FLEET_KINDS

KINDS = {kind.kind: kind for kind in FLEET_KINDS}
RUN = {
    "metadata": {"name": "r", "generation": 2},
    "spec": {"placementName": "web"},
    "status": {"conditions": [{"type": "Initialized", "status": "True", "observedGeneration": 2},
                              {"type": "Succeeded", "status": "False"}]},
}


@pytest.mark.parametrize(
    ("path", "cell"),
    [
        pytest.param(".spec.placementName", "web", id="a-field"),
        pytest.param(".metadata.generation", "2", id="a-number"),
        pytest.param('.status.conditions[?(@.type=="Initialized")].status', "True", id="a-condition"),
        pytest.param('.status.conditions[?(@.type=="Initialized")].observedGeneration', "2", id="its-generation"),
        pytest.param('.status.conditions[?(@.type=="Progressing")].status', "", id="an-absent-condition"),
        pytest.param(".spec.nothing.here", "", id="an-absent-field"),
    ],
)
def test_the_printer_column_paths_evaluate_as_kubectl_shows_them(path, cell):
    assert jsonpath.cell(RUN, path) == cell


def test_an_escaped_dot_is_part_of_the_key():
    status = {"status": {"properties": {"kubernetes-fleet.io/node-count": {"value": "3"}}}}
    assert jsonpath.cell(status, ".status.properties.kubernetes-fleet\\.io/node-count.value") == "3"


def headers(kind: str, *, wide: bool) -> list[str]:
    return [c.header for c in columns_for(KINDS[kind]) if wide or not c.wide]


def test_a_run_shows_the_tutorials_columns_and_wide_adds_progressing_and_strategy():
    assert headers("ClusterStagedUpdateRun", wide=False) == [
        "PLACEMENT", "RESOURCE-SNAPSHOT-INDEX", "POLICY-SNAPSHOT-INDEX", "INITIALIZED", "SUCCEEDED", "AGE",
    ]  # fmt: skip
    assert headers("StagedUpdateRun", wide=True)[-4:] == ["PROGRESSING", "SUCCEEDED", "AGE", "STRATEGY"]


def test_an_approval_request_keeps_the_tutorials_approvalaccepted():
    assert headers("ClusterApprovalRequest", wide=False) == ["UPDATE-RUN", "STAGE", "APPROVED", "APPROVALACCEPTED", "AGE"]


def test_a_member_cluster_gains_its_crd_columns_in_wide_output():
    assert headers("MemberCluster", wide=False) == ["JOINED", "SIMULATED", "AGE"]
    assert headers("MemberCluster", wide=True) == [
        "JOINED", "SIMULATED", "AGE", "MEMBER-AGENT-LAST-SEEN", "NODE-COUNT", "AVAILABLE-CPU",
        "AVAILABLE-MEMORY", "ALLOCATABLE-CPU", "ALLOCATABLE-MEMORY",
    ]  # fmt: skip


def test_a_placement_shows_the_crds_columns():
    assert headers("ClusterResourcePlacement", wide=False) == [
        "GEN", "SCHEDULED", "SCHEDULED-GEN", "AVAILABLE", "AVAILABLE-GEN", "AGE",
    ]  # fmt: skip
    assert "TYPE" in headers("ResourcePlacement", wide=True)


def test_a_binding_and_a_snapshot_show_the_crds_columns():
    assert headers("ClusterResourceBinding", wide=False) == ["WORKSYNCHRONIZED", "RESOURCESAPPLIED", "AGE"]
    assert headers("ClusterResourceSnapshot", wide=False) == ["GEN", "AGE"]
    assert headers("ClusterStagedUpdateStrategy", wide=True) == ["AGE"]


def test_cells_are_raw_values_as_a_table_holds_them():
    request = m.ClusterApprovalRequest(
        name="example-run-canary",
        creation_timestamp=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        generation=1,
        spec={"parentStageRollout": "example-run", "targetStage": "canary"},
        status={"conditions": [{"type": "Approved", "status": "True"}, {"type": "ApprovalAccepted", "status": "True"}]},
    )
    manifest = printed(request)
    cells = {c.name: c.value(request, manifest) for c in columns_for(KINDS["ClusterApprovalRequest"])}
    assert cells == {"Update-Run": "example-run", "Stage": "canary", "Approved": "True",
                     "ApprovalAccepted": "True", "Age": "2026-01-02T03:04:05Z"}
