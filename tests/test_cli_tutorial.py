"""The user's tutorial (seed-tutorial.md §1–3) through `manage.py fleet`, with
the printed tables asserted exactly as the tutorial shows them, and the rest
of the fleet command's contract: output formats, names, patch, approve, wait,
delete and one-line errors."""

import json

import pytest
import yaml

from rollouts import models as m
from rollouts.api.kinds import CORE_KINDS, FLEET_KINDS
from rollouts.cli import commands
from rollouts.demo import DEMO_DIR

pytestmark = pytest.mark.django_db

MEMBERS = str(DEMO_DIR / "01-members.yaml")
WORKLOAD = str(DEMO_DIR / "02-workload.yaml")
PLACEMENT = str(DEMO_DIR / "03-placement.yaml")
STRATEGY = str(DEMO_DIR / "04-strategy.yaml")

CONFIGMAP_V2 = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: test-cm
  namespace: test-namespace
data:
  key: value2
"""

APPROVAL_REQUEST = """\
apiVersion: placement.kubernetes-fleet.io/v1beta1
kind: ClusterApprovalRequest
metadata:
  name: example-run-canary
  labels:
    kubernetes-fleet.io/targetUpdateRun: example-run
    kubernetes-fleet.io/targetUpdatingStage: canary
spec:
  parentStageRollout: example-run
  targetStage: canary
"""

CRP_TABLE_AT_51S = """\
NAME                GEN   SCHEDULED   SCHEDULED-GEN   AVAILABLE   AVAILABLE-GEN   AGE
example-placement   1     True        1                                           51s
"""

SNAPSHOTS_AT_60S = """\
NAME                           GEN   AGE   LABELS
example-placement-0-snapshot   1     60s   kubernetes-fleet.io/is-latest-snapshot=true,kubernetes-fleet.io/parent-CRP=example-placement,kubernetes-fleet.io/resource-index=0
"""

SNAPSHOTS_AFTER_VALUE2 = """\
NAME                           GEN   AGE    LABELS
example-placement-0-snapshot   1     2m6s   kubernetes-fleet.io/is-latest-snapshot=false,kubernetes-fleet.io/parent-CRP=example-placement,kubernetes-fleet.io/resource-index=0
example-placement-1-snapshot   1     10s    kubernetes-fleet.io/is-latest-snapshot=true,kubernetes-fleet.io/parent-CRP=example-placement,kubernetes-fleet.io/resource-index=1
"""


@pytest.fixture
def tutorial(fleet, frozen_clock):
    """Tutorial §1–2 applied at the frozen start time: members, workload, CRP."""
    for path in (MEMBERS, WORKLOAD, PLACEMENT):
        assert fleet("apply", "-f", path).code == 0
    return frozen_clock


# --- tutorial §1–3 ------------------------------------------------------------


def test_applying_the_tutorial_prints_one_line_per_object(fleet, frozen_clock):
    assert fleet("apply", "-f", MEMBERS).out == (
        "membercluster.cluster.kubernetes-fleet.io/member1 created\n"
        "membercluster.cluster.kubernetes-fleet.io/member2 created\n"
        "membercluster.cluster.kubernetes-fleet.io/member3 created\n"
    )
    assert (
        fleet("apply", "-f", WORKLOAD).out
        == "namespace/test-namespace created\nconfigmap/test-cm created\n"
    )
    assert fleet("apply", "-f", PLACEMENT).out == (
        "clusterresourceplacement.placement.kubernetes-fleet.io/example-placement created\n"
    )
    assert fleet("apply", "-f", PLACEMENT).out == (
        "clusterresourceplacement.placement.kubernetes-fleet.io/example-placement unchanged\n"
    )


def test_members_carry_the_tutorial_labels(fleet, tutorial):
    tutorial.advance(5)
    code, out, err = fleet("get", "memberclusters", "--show-labels")
    assert (code, err) == (0, "")
    assert out == (
        "NAME      JOINED   SIMULATED   AGE   LABELS\n"
        "member1   True     True        5s    environment=canary,order=2\n"
        "member2   True     True        5s    environment=staging\n"
        "member3   True     True        5s    environment=canary,order=1\n"
    )


def test_get_crp_right_after_creation_matches_the_tutorial(fleet, tutorial):
    tutorial.advance(51)
    assert fleet("get", "crp") == (0, CRP_TABLE_AT_51S, "")
    assert fleet("get", "clusterresourceplacement", "example-placement").out == CRP_TABLE_AT_51S


def test_snapshots_follow_the_configmap_as_in_the_tutorial(fleet, tutorial, manifest_file):
    tutorial.advance(60)
    assert fleet("get", "clusterresourcesnapshots", "--show-labels") == (0, SNAPSHOTS_AT_60S, "")

    tutorial.advance(56)
    assert fleet("apply", "-f", manifest_file(CONFIGMAP_V2)).out == "configmap/test-cm configured\n"
    tutorial.advance(10)
    assert fleet("get", "clusterresourcesnapshots", "--show-labels").out == SNAPSHOTS_AFTER_VALUE2


def test_reapplying_identical_content_makes_no_new_snapshot(fleet, tutorial, manifest_file):
    path = manifest_file(CONFIGMAP_V2)
    fleet("apply", "-f", path)
    assert fleet("apply", "-f", path).out == "configmap/test-cm unchanged\n"
    assert fleet("apply", "-f", WORKLOAD, "-f", PLACEMENT).code == 0  # back to value1: index 2
    assert (
        fleet("apply", "-f", WORKLOAD).out
        == "namespace/test-namespace unchanged\nconfigmap/test-cm unchanged\n"
    )
    assert fleet("get", "crs", "-o", "name").out == (
        "clusterresourcesnapshot.placement.kubernetes-fleet.io/example-placement-0-snapshot\n"
        "clusterresourcesnapshot.placement.kubernetes-fleet.io/example-placement-1-snapshot\n"
        "clusterresourcesnapshot.placement.kubernetes-fleet.io/example-placement-2-snapshot\n"
    )


def test_a_snapshot_holds_cleaned_resources_annotations_and_its_owner(fleet, tutorial):
    code, out, _ = fleet("get", "crs", "example-placement-0-snapshot", "-o", "yaml")
    snapshot = yaml.safe_load(out)
    meta = snapshot["metadata"]
    assert set(meta["annotations"]) == {
        "kubernetes-fleet.io/number-of-enveloped-object",
        "kubernetes-fleet.io/number-of-resource-snapshots",
        "kubernetes-fleet.io/resource-hash",
    }
    assert len(meta["annotations"]["kubernetes-fleet.io/resource-hash"]) == 64
    [owner] = meta["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["controller"]) == (
        "ClusterResourcePlacement",
        "example-placement",
        True,
    )
    assert owner["uid"] == str(m.ClusterResourcePlacement.objects.get().uid)
    namespace, configmap = snapshot["spec"]["selectedResources"]
    assert namespace == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "test-namespace"},
    }
    assert configmap["data"] == {"key": "value1"}
    for selected in (namespace, configmap):
        assert not {"uid", "resourceVersion", "creationTimestamp"} & set(selected["metadata"])


def test_server_fields_in_an_applied_manifest_do_not_reach_the_snapshot(
    fleet, tutorial, manifest_file
):
    _, out, _ = fleet("get", "cm", "test-cm", "-n", "test-namespace", "-o", "yaml")
    edited = out.replace("value1", "value3")
    assert fleet("apply", "-f", manifest_file(edited)).out == "configmap/test-cm configured\n"
    snapshot = yaml.safe_load(fleet("get", "crs", "example-placement-1-snapshot", "-o", "yaml").out)
    configmap = snapshot["spec"]["selectedResources"][1]
    assert configmap["metadata"] == {"name": "test-cm", "namespace": "test-namespace"}


# --- output formats -------------------------------------------------------------


def test_get_yaml_applied_back_is_unchanged(fleet, tutorial):
    for args in (["crp", "example-placement"], ["crp"], ["crs"], ["cm", "-n", "test-namespace"]):
        code, out, _ = fleet("get", *args, "-o", "yaml")
        assert code == 0
        applied = fleet("apply", "-f", "-", stdin=out)
        assert applied.code == 0, applied.err
        assert applied.out and all(line.endswith(" unchanged") for line in applied.out.splitlines())


def test_one_name_prints_an_object_and_a_listing_prints_a_list(fleet, tutorial):
    one = json.loads(fleet("get", "crp", "example-placement", "-o", "json").out)
    assert (one["kind"], one["metadata"]["name"], one["spec"]["strategy"]) == (
        "ClusterResourcePlacement",
        "example-placement",
        {"type": "External"},
    )
    assert one["status"]["conditions"][0]["type"] == "ClusterResourcePlacementScheduled"
    listing = json.loads(fleet("get", "crp", "-o", "json").out)
    assert (listing["kind"], [i["metadata"]["name"] for i in listing["items"]]) == (
        "List",
        ["example-placement"],
    )


def test_an_empty_listing_is_an_empty_list_in_yaml_and_a_notice_in_tables(fleet, tutorial):
    assert yaml.safe_load(fleet("get", "csur", "-o", "yaml").out)["items"] == []
    assert fleet("get", "csur") == (0, "", "No resources found\n")
    assert fleet("get", "cm") == (0, "", "No resources found in default namespace.\n")
    assert fleet("get", "cm", "-n", "nowhere") == (
        0,
        "",
        "No resources found in nowhere namespace.\n",
    )


def test_wide_output_adds_the_priority_columns(fleet, tutorial):
    header = fleet("get", "crp", "-o", "wide").out.splitlines()[0].split()
    assert header == [
        "NAME", "GEN", "TYPE", "SCHEDULED", "SCHEDULED-GEN", "WORK-SYNCHRONIZED",
        "WORK-SYNCHRONIZED-GEN", "AVAILABLE", "AVAILABLE-GEN", "AGE",
    ]  # fmt: skip


def test_label_selector_and_all_namespaces(fleet, tutorial):
    canary = fleet("get", "membercluster", "-l", "environment=canary", "-o", "name").out
    assert (
        canary
        == "membercluster.cluster.kubernetes-fleet.io/member1\nmembercluster.cluster.kubernetes-fleet.io/member3\n"
    )
    assert fleet("get", "cluster", "-l", "environment in (staging),!order", "-o", "name").out == (
        "membercluster.cluster.kubernetes-fleet.io/member2\n"
    )
    assert fleet("get", "cm", "-A") == (
        0,
        "NAMESPACE        NAME      DATA   AGE\ntest-namespace   test-cm   1      0s\n",
        "",
    )
    assert (
        fleet("get", "ns", "-A").out
        == "NAME             STATUS   AGE\ntest-namespace   Active   0s\n"
    )


def test_kind_slash_name_form_works_for_get_and_mixes_kinds(fleet, tutorial):
    code, out, _ = fleet("get", "crp/example-placement", "ns/test-namespace", "-o", "name")
    assert (code, out) == (
        0,
        "clusterresourceplacement.placement.kubernetes-fleet.io/example-placement\nnamespace/test-namespace\n",
    )
    assert fleet("get", "crp", "crp/example-placement").code == 1


@pytest.mark.parametrize("kind", FLEET_KINDS + CORE_KINDS, ids=lambda k: k.kind)
def test_every_kind_answers_to_its_kind_plural_singular_and_short_names(fleet, kind):
    for name in sorted(kind.names()) + [kind.kind]:
        code, _, err = fleet("get", name)
        assert code == 0, f"{name}: {err}"
        assert err.startswith("No resources found"), name


RUN = """\
apiVersion: placement.kubernetes-fleet.io/v1beta1
kind: ClusterStagedUpdateRun
metadata:
  name: example-run
spec:
  placementName: example-placement
  resourceSnapshotIndex: "1"
  stagedRolloutStrategyName: example-strategy
"""


def test_get_csur_shows_the_tutorial_columns(fleet, tutorial, manifest_file):
    fleet("apply", "-f", manifest_file(CONFIGMAP_V2), "-f", STRATEGY)
    assert fleet("apply", "-f", manifest_file(RUN, "run.yaml")).code == 0
    initialized = {
        "type": "Initialized", "status": "True", "reason": "UpdateRunInitializedSuccessfully", "message": "",
        "observedGeneration": 1, "lastTransitionTime": "2026-03-02T21:27:00Z",
    }  # fmt: skip
    status = json.dumps({"status": {"policySnapshotIndexUsed": "0", "conditions": [initialized]}})
    patched = fleet("patch", "csur", "example-run", "--subresource", "status", "-p", status)
    assert patched.code == 0, patched.err
    tutorial.advance(7)
    assert fleet("get", "csur", "example-run").out == (
        "NAME          PLACEMENT           RESOURCE-SNAPSHOT-INDEX   POLICY-SNAPSHOT-INDEX   INITIALIZED   SUCCEEDED   AGE\n"
        "example-run   example-placement   1                         0                       True                      7s\n"
    )
    assert fleet("get", "csur", "-o", "wide").out.splitlines()[0].split() == [
        "NAME", "PLACEMENT", "RESOURCE-SNAPSHOT-INDEX", "POLICY-SNAPSHOT-INDEX", "INITIALIZED",
        "PROGRESSING", "SUCCEEDED", "AGE", "STRATEGY",
    ]  # fmt: skip


# --- member clusters ------------------------------------------------------------


def test_cluster_flag_reads_what_a_member_holds(fleet, tutorial):
    assert fleet("get", "cm", "test-cm", "-n", "test-namespace", "--cluster", "member1") == (
        1,
        "",
        'Error from server (NotFound): configmaps "test-cm" not found\n',
    )
    manifest = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "test-cm", "namespace": "test-namespace"},
        "data": {"key": "value2"},
    }
    m.MemberObject.objects.create(
        cluster="member1", kind="ConfigMap", namespace="test-namespace", name="test-cm", manifest=manifest,
        placement="example-placement", resource_snapshot="example-placement-1-snapshot", applied_at=tutorial.now(),
    )  # fmt: skip
    tutorial.advance(15)
    assert fleet("get", "cm", "-n", "test-namespace", "--cluster", "member1").out == (
        "NAME      SNAPSHOT                       AGE\ntest-cm   example-placement-1-snapshot   15s\n"
    )
    shown = fleet(
        "get", "cm", "test-cm", "-n", "test-namespace", "--cluster", "member1", "-o", "yaml"
    ).out
    assert yaml.safe_load(shown) == manifest
    assert fleet("get", "cm", "-n", "test-namespace", "--cluster", "member2").err == (
        "No resources found in test-namespace namespace.\n"
    )
    assert fleet("get", "cm", "--cluster", "member9").err == (
        'Error from server (NotFound): memberclusters.cluster.kubernetes-fleet.io "member9" not found\n'
    )


# --- patch ------------------------------------------------------------------------


def test_patch_merge_json_and_yaml_text(fleet, tutorial):
    crp = "clusterresourceplacement.placement.kubernetes-fleet.io/example-placement"
    merge = fleet(
        "patch",
        "crp",
        "example-placement",
        "--type",
        "merge",
        "-p",
        '{"metadata": {"labels": {"team": "a"}}}',
    )
    assert merge == (0, f"{crp} patched\n", "")
    assert (
        fleet("patch", "crp/example-placement", "-p", "metadata: {labels: {team: a}}").out
        == f"{crp} patched (no change)\n"
    )
    ops = '[{"op": "replace", "path": "/metadata/labels/team", "value": "b"}]'
    assert (
        fleet("patch", "crp", "example-placement", "--type", "json", "-p", ops).out
        == f"{crp} patched\n"
    )
    assert fleet("get", "crp", "-l", "team=b", "-o", "name").out == f"{crp}\n"
    # A label is metadata: the generation stays 1.
    assert fleet("get", "crp").out.splitlines()[1].split()[1] == "1"


def test_patch_from_a_file_and_status_subresource(fleet, tutorial, manifest_file):
    fleet("apply", "-f", manifest_file(APPROVAL_REQUEST))
    approval = manifest_file(
        json.dumps({"status": {"conditions": [{"type": "Approved", "status": "True", "reason": "testPassed", "message": "lgtm",
                                                "observedGeneration": 1, "lastTransitionTime": "2026-03-02T21:30:00Z"}]}}),
        "approval.json",
    )  # fmt: skip
    code, out, err = fleet(
        "patch",
        "clusterapprovalrequests",
        "example-run-canary",
        "--type=merge",
        "--subresource=status",
        "--patch-file",
        approval,
    )
    assert (code, out, err) == (
        0,
        "clusterapprovalrequest.placement.kubernetes-fleet.io/example-run-canary patched\n",
        "",
    )
    event = m.Event.objects.get(action=m.Event.Action.APPROVED)
    assert (event.object_name, event.message, event.reason) == (
        "example-run-canary",
        "lgtm",
        "testPassed",
    )


def test_patch_needs_exactly_one_patch_source(fleet, tutorial):
    assert fleet("patch", "crp", "example-placement").err.startswith(
        "error: must specify --patch or --patch-file"
    )
    assert fleet("patch", "crp", "example-placement", "-p", "{}", "--patch-file", "x").code == 1
    assert fleet("patch", "crp", "example-placement", "--type", "merge", "-p", "[1]") == (
        1, "", "error: a merge patch must be an object\n"
    )  # fmt: skip


# --- approve ----------------------------------------------------------------------


def test_approve_then_approve_again_says_who_and_when(fleet, tutorial, manifest_file):
    fleet("apply", "-f", manifest_file(APPROVAL_REQUEST))
    tutorial.advance(159)
    assert fleet("get", "clusterapprovalrequest").out == (
        "NAME                 UPDATE-RUN    STAGE    APPROVED   APPROVALACCEPTED   AGE\n"
        "example-run-canary   example-run   canary                                 2m39s\n"
    )
    subject = "clusterapprovalrequest.placement.kubernetes-fleet.io/example-run-canary"
    assert fleet("approve", "example-run-canary", "--as", "alice", "--message", "lgtm") == (
        0,
        f"{subject} approved\n",
        "",
    )
    tutorial.advance(30)
    again = fleet("--as", "bob", "approve", "careq/example-run-canary")
    assert again == (0, f"{subject} already approved by alice at 2026-03-02T21:29:39Z\n", "")
    approved = m.Event.objects.filter(action=m.Event.Action.APPROVED)
    assert [(e.actor, e.message) for e in approved] == [("alice", "lgtm")]
    assert fleet("get", "careq").out.splitlines()[1].split()[3] == "True"


def test_approve_refuses_what_is_not_an_approval_request(fleet, tutorial):
    assert fleet("approve", "missing") == (
        1, "", 'Error from server (NotFound): clusterapprovalrequests.placement.kubernetes-fleet.io "missing" not found\n'
    )  # fmt: skip
    code, _, err = fleet("approve", "crp/example-placement")
    assert code == 1 and err.startswith(
        "error: clusterresourceplacement.placement.kubernetes-fleet.io cannot be approved"
    )
    assert fleet("approve", "missing", "-n", "team-a").err == (
        'Error from server (NotFound): approvalrequests.placement.kubernetes-fleet.io "missing" not found\n'
    )


# --- wait -------------------------------------------------------------------------


def test_wait_returns_when_the_condition_is_met(fleet, tutorial):
    crp = "clusterresourceplacement.placement.kubernetes-fleet.io/example-placement"
    assert fleet("wait", "crp/example-placement", "--for=condition=ClusterResourcePlacementScheduled") == (
        0, f"{crp} condition met\n", ""
    )  # fmt: skip
    # Type and status compare case-insensitively, as kubectl does.
    assert (
        fleet(
            "wait",
            "crp",
            "example-placement",
            "--for=condition=clusterresourceplacementrolloutstarted=unknown",
        ).code
        == 0
    )


def test_wait_times_out_with_one_line(fleet, tutorial):
    code, out, err = fleet(
        "wait",
        "crp/example-placement",
        "--for=condition=ClusterResourcePlacementAvailable",
        "--timeout=1s",
    )
    assert (code, out, err) == (
        1, "", "error: timed out waiting for the condition on clusterresourceplacements/example-placement\n"
    )  # fmt: skip


def test_wait_for_delete_and_bad_wait_arguments(fleet, tutorial):
    fleet("delete", "crp", "example-placement")
    assert fleet("wait", "crp/example-placement", "--for=delete", "--timeout=1s").code == 0
    assert fleet("wait", "crp/example-placement", "--for=condition=Ready").err == (
        'Error from server (NotFound): clusterresourceplacements.placement.kubernetes-fleet.io "example-placement" not found\n'
    )
    assert fleet("wait", "ns/test-namespace", "--for=ready").err.startswith(
        'error: unrecognized condition: "ready"'
    )
    assert fleet("wait", "ns/test-namespace", "--for=delete", "--timeout=soon").err.startswith(
        'error: invalid duration "soon"'
    )


# --- delete -----------------------------------------------------------------------


def test_deleting_the_placement_takes_its_snapshots_and_bindings(fleet, tutorial):
    assert m.ClusterResourceBinding.objects.count() == 3
    assert fleet("delete", "crp", "example-placement") == (
        0, 'clusterresourceplacement.placement.kubernetes-fleet.io "example-placement" deleted\n', ""
    )  # fmt: skip
    assert fleet("get", "crs").err == "No resources found\n"
    assert fleet("get", "crb").err == "No resources found\n"
    assert fleet("get", "csps").err == "No resources found\n"


def test_deleting_the_namespace_takes_its_configmap(fleet, tutorial):
    assert fleet("delete", "namespace/test-namespace").out == 'namespace "test-namespace" deleted\n'
    assert fleet("get", "cm", "-A").err == "No resources found\n"


def test_delete_goes_on_past_a_missing_name_and_exits_1(fleet, tutorial, manifest_file):
    fleet("apply", "-f", STRATEGY)
    code, out, err = fleet("delete", "csus", "nope", "example-strategy")
    assert (code, out, err) == (
        1,
        'clusterstagedupdatestrategy.placement.kubernetes-fleet.io "example-strategy" deleted\n',
        'Error from server (NotFound): clusterstagedupdatestrategies.placement.kubernetes-fleet.io "nope" not found\n',
    )
    assert fleet("delete", "csus", "nope", "--ignore-not-found") == (0, "", "")
    assert (
        fleet("delete", "csus").err
        == "error: resource(s) were provided, but no name was specified\n"
    )
    assert fleet("delete", "-f", PLACEMENT).out == (
        'clusterresourceplacement.placement.kubernetes-fleet.io "example-placement" deleted\n'
    )


# --- errors -----------------------------------------------------------------------


def test_errors_are_one_line_with_exit_code_1(fleet, tutorial, manifest_file):
    cases = {
        ("get", "widgets"): 'error: the server doesn\'t have a resource type "widgets"\n',
        (
            "get",
            "crp",
            "nope",
        ): 'Error from server (NotFound): clusterresourceplacements.placement.kubernetes-fleet.io "nope" not found\n',
        (
            "apply",
            "-f",
            "/no/such/file.yaml",
        ): 'error: the path "/no/such/file.yaml" does not exist\n',
        ("apply",): "error: must specify one of -f and -k\n",
        ("apply", "-f", manifest_file("", "empty.yaml")): "error: no objects passed to apply\n",
    }
    for args, message in cases.items():
        assert fleet(*args) == (1, "", message), args


def test_broken_yaml_and_bad_documents_apply_nothing(fleet, tutorial, manifest_file):
    code, _, err = fleet("apply", "-f", manifest_file("kind: [unclosed\n", "broken.yaml"))
    assert code == 1 and err.startswith("error: error parsing ") and err.count("\n") == 1
    invalid = CONFIGMAP_V2 + "---\n" + CONFIGMAP_V2.replace("name: test-cm", "name: Not_Valid")
    code, _, err = fleet("apply", "-f", manifest_file(invalid))
    assert code == 1 and err.startswith(
        'Error from server (Invalid): ConfigMap "Not_Valid" is invalid: metadata.name'
    )
    assert "value1" in fleet("get", "cm", "test-cm", "-n", "test-namespace", "-o", "yaml").out


def test_a_stale_resource_version_is_a_conflict(fleet, tutorial, manifest_file):
    stale = fleet("get", "cm", "test-cm", "-n", "test-namespace", "-o", "yaml").out
    fleet("apply", "-f", manifest_file(CONFIGMAP_V2))
    code, _, err = fleet("apply", "-f", "-", stdin=stale.replace("value1", "value3"))
    assert code == 1
    assert err == (
        'Error from server (Conflict): Operation cannot be fulfilled on configmaps "test-cm": '
        "the object has been modified; please apply your changes to the latest version and try again\n"
    )


def test_an_unexpected_exception_is_one_line_with_exit_code_2(fleet, monkeypatch):
    def broken(ctx):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setitem(commands.VERBS, "get", broken)
    assert fleet("get", "crp") == (
        2, "", "error: internal error: RuntimeError: boom second line (re-run with --traceback for details)\n"
    )  # fmt: skip
    with pytest.raises(RuntimeError):
        fleet("get", "crp", "--traceback")


def test_usage_errors_do_not_traceback(fleet):
    code, _, err = fleet("get", "crp", "-o", "bogus")
    assert code == 2 and "invalid choice" in err


# --- apply sources, demo, help -------------------------------------------------


def test_apply_reads_directories_and_stdin(fleet, frozen_clock):
    assert fleet("apply", "-f", str(DEMO_DIR)).out.splitlines()[-1] == (
        "clusterstagedupdatestrategy.placement.kubernetes-fleet.io/example-strategy created"
    )
    with open(PLACEMENT) as placement:
        assert fleet("apply", "-f", "-", stdin=placement.read()).out == (
            "clusterresourceplacement.placement.kubernetes-fleet.io/example-placement unchanged\n"
        )


def test_apply_uses_the_namespace_flag_for_documents_without_one(fleet, tutorial):
    stdin = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: other}\ndata: {a: b}\n"
    assert (
        fleet("apply", "-n", "test-namespace", "-f", "-", stdin=stdin).out
        == "configmap/other created\n"
    )
    assert (
        fleet("get", "cm", "-n", "test-namespace", "-o", "name").out
        == "configmap/other\nconfigmap/test-cm\n"
    )


def test_demo_loads_the_tutorial_fleet_once(fleet):
    first = fleet("demo").out.splitlines()
    assert len(first) == 7 and all(line.endswith(" created") for line in first)
    again = fleet("demo").out.splitlines()
    assert [line.rsplit(" ", 1)[0] for line in again] == [line.rsplit(" ", 1)[0] for line in first]
    assert all(line.endswith(" unchanged") for line in again)
    assert m.Event.objects.filter(actor="demo").count() == 7


def test_help_describes_every_verb(fleet, capsys):
    assert "approve" in fleet().out and "wait" in fleet().out
    for verb in commands.VERBS:
        assert fleet(verb, "--help").code == 0
        shown = capsys.readouterr().out  # argparse prints help to sys.stdout
        assert f"fleet {verb} " in shown.splitlines()[0] and "examples" in shown, verb


def test_as_names_the_actor_in_the_audit_log(fleet, frozen_clock):
    fleet("--as", "carol", "apply", "-f", STRATEGY)
    fleet("delete", "csus", "example-strategy", "--as", "dave")
    assert list(m.Event.objects.values_list("actor", "action")) == [
        ("carol", "created"),
        ("dave", "deleted"),
    ]
