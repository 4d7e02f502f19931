"""The hub's Kubernetes-compatible API through Django's test client: what
kubectl reads and sends, answered as the API server answers it (discovery,
lists, Table, writes with preconditions, patches by media type, Status
errors), and who may do what with a token (docs/kube-api.md).

Personas: ada (admin), alice (release manager), vic (viewer)."""

import json

import pytest
from django.contrib.auth.models import Group

from rollouts import models as m
from rollouts.roles import ADMINS, RELEASE_MANAGERS, VIEWERS, user_create
from rollouts.services.tokens import token_create, token_revoke
from tests.fleet_builders import approval_request, tutorial_waiting_at_canary
from tests.test_approval_policies import canary, strategy_doc

pytestmark = pytest.mark.django_db

GROUP = "/apis/placement.kubernetes-fleet.io/v1beta1"
CRPS = f"{GROUP}/clusterresourceplacements"
CMS = "/api/v1/namespaces/test-namespace/configmaps"
GATE = "example-run-canary"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
CRP = {"apiVersion": "placement.kubernetes-fleet.io/v1beta1", "kind": "ClusterResourcePlacement",
       "metadata": {"name": "web"},
       "spec": {"resourceSelectors": [{"group": "", "kind": "Namespace", "name": "test-namespace", "version": "v1"}],
                "policy": {"placementType": "PickAll"}, "strategy": {"type": "External"}}}
APPROVED = {"status": {"conditions": [{"type": "Approved", "status": "True", "reason": "lgtm", "message": "lgtm",
                                       "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1}]}}


@pytest.fixture
def tokens():
    """{persona: bearer token}."""
    found = {}
    for name, role in (("ada", ADMINS), ("alice", RELEASE_MANAGERS), ("vic", VIEWERS)):
        user, _ = user_create(username=name, role=role)
        found[name] = token_create(user=user, name="kubectl", actor=name)[1]
    return found


@pytest.fixture
def kube(client, tokens):
    """`kube(persona, method, path, body=None, content_type=..., **headers)` → response."""

    def call(persona, method, path, body=None, content_type="application/json", **headers):
        data = json.dumps(body) if body is not None and not isinstance(body, str) else body
        if persona:
            headers["HTTP_AUTHORIZATION"] = f"Bearer {tokens[persona]}"
        return getattr(client, method.lower())(path, data=data, content_type=content_type, **headers)

    return call


def status_of(response) -> tuple[int, str, str]:
    body = response.json()
    assert body["kind"] == "Status"
    return body["code"], body["reason"], body["message"]


# Who is calling -----------------------------------------------------------------------------------


def test_a_call_without_a_token_is_401_unauthorized(kube):
    response = kube(None, "GET", "/apis")
    assert response.status_code == 401
    assert status_of(response) == (401, "Unauthorized", "Unauthorized")


def test_the_version_is_public_as_on_the_api_server(kube):
    """kubectl's version dispatcher asks before it sends a token."""
    assert kube(None, "GET", "/version").json()["minor"] == "32"


def test_a_revoked_token_is_refused(kube, tokens):
    token = m.ApiToken.objects.get(user__username="vic")
    token_revoke(token=token, actor="vic")
    assert kube("vic", "GET", "/apis").status_code == 401


def test_a_token_is_stored_only_as_its_hash(tokens):
    stored = m.ApiToken.objects.get(user__username="ada")
    assert tokens["ada"] not in json.dumps(list(m.ApiToken.objects.values()), default=str)
    assert tokens["ada"].startswith(stored.prefix)


def test_a_viewer_may_read_but_not_write(kube):
    assert kube("vic", "GET", CRPS).status_code == 200
    response = kube("vic", "POST", CRPS, CRP)
    assert response.status_code == 403
    code, reason, message = status_of(response)
    assert (code, reason) == (403, "Forbidden")
    assert message.startswith('clusterresourceplacements.placement.kubernetes-fleet.io is forbidden: User "vic" '
                              'cannot create resource "clusterresourceplacements"')
    assert m.Event.objects.filter(actor="vic", action="denied").exists()


def test_a_browser_session_may_read_but_never_write(client, tokens):
    client.force_login(m.ApiToken.objects.get(user__username="ada").user)
    assert client.get(CRPS).status_code == 200
    assert client.post(CRPS, data=json.dumps(CRP), content_type="application/json").status_code == 401


# Discovery ----------------------------------------------------------------------------------------


def test_discovery_lists_the_fleet_kinds_with_short_names_categories_and_status(kube):
    groups = kube("vic", "GET", "/apis").json()
    placement = next(g for g in groups["groups"] if g["name"] == "placement.kubernetes-fleet.io")
    assert placement["preferredVersion"]["version"] == "v1beta1"
    resources = {r["name"]: r for r in kube("vic", "GET", GROUP).json()["resources"]}
    crp = resources["clusterresourceplacements"]
    assert (crp["kind"], crp["namespaced"], crp["shortNames"]) == ("ClusterResourcePlacement", False, ["crp"])
    assert "fleet" in crp["categories"] and "patch" in crp["verbs"]
    assert resources["clusterresourceplacements/status"]["verbs"] == ["get", "patch", "update"]
    core = {r["name"] for r in kube("vic", "GET", "/api/v1").json()["resources"]}
    assert {"namespaces", "configmaps"} <= core


def test_openapi_names_each_kinds_patch_with_field_validation(kube):
    paths = kube("vic", "GET", "/openapi/v3").json()["paths"]
    url = paths["apis/placement.kubernetes-fleet.io/v1beta1"]["serverRelativeURL"]
    document = kube("vic", "GET", url).json()
    patch = document["paths"][f"{GROUP}/clusterresourceplacements/{{name}}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"]["kind"] == "ClusterResourcePlacement"
    assert "fieldValidation" in [p["name"] for p in patch["parameters"]]
    schema = document["components"]["schemas"]["io.kubernetes-fleet.placement.v1beta1.ClusterResourcePlacement"]
    assert "spec" in schema["properties"]


def test_an_unknown_path_is_a_404_status(kube):
    assert status_of(kube("vic", "GET", f"{GROUP}/nothings"))[:2] == (404, "NotFound")


# Reads --------------------------------------------------------------------------------------------


def test_a_missing_object_is_not_found_in_the_api_servers_words(kube):
    response = kube("vic", "GET", f"{CRPS}/nope")
    assert status_of(response) == (404, "NotFound",
                                   'clusterresourceplacements.placement.kubernetes-fleet.io "nope" not found')
    assert response.json()["details"] == {"name": "nope", "group": "placement.kubernetes-fleet.io",
                                           "kind": "clusterresourceplacements"}


def test_lists_page_with_limit_and_continue_and_filter_by_field_and_label(kube):
    for name in ("a", "b", "c"):
        doc = {**CRP, "metadata": {"name": name, "labels": {"tier": "web" if name != "b" else "db"}}}
        assert kube("ada", "POST", CRPS, doc).status_code == 201
    first = kube("vic", "GET", f"{CRPS}?limit=2").json()
    assert [i["metadata"]["name"] for i in first["items"]] == ["a", "b"]
    rest = kube("vic", "GET", f"{CRPS}?limit=2&continue={first['metadata']['continue']}").json()
    assert [i["metadata"]["name"] for i in rest["items"]] == ["c"] and "continue" not in rest["metadata"]
    assert int(first["metadata"]["resourceVersion"]) >= 1
    by_label = kube("vic", "GET", f"{CRPS}?labelSelector=tier%3Dweb").json()["items"]
    assert [i["metadata"]["name"] for i in by_label] == ["a", "c"]
    by_name = kube("vic", "GET", f"{CRPS}?fieldSelector=metadata.name%3Db").json()["items"]
    assert [i["metadata"]["name"] for i in by_name] == ["b"]
    assert status_of(kube("vic", "GET", f"{CRPS}?fieldSelector=spec.x%3D1"))[:2] == (400, "BadRequest")


def test_a_table_has_the_fleet_get_columns_with_wide_ones_at_priority_1(kube, frozen_clock):
    kube("ada", "POST", CRPS, CRP)
    frozen_clock.advance(51)
    table = kube("vic", "GET", CRPS, HTTP_ACCEPT=TABLE).json()
    assert table["kind"] == "Table"
    shown = [c["name"] for c in table["columnDefinitions"] if c["priority"] == 0]
    # The CRD's column names, as the API server sends them (kubectl upper-cases them).
    assert [n.upper() for n in shown] == ["NAME", "GEN", "SCHEDULED", "SCHEDULED-GEN", "AVAILABLE", "AVAILABLE-GEN",
                                          "AGE"]
    row = table["rows"][0]
    assert row["object"]["metadata"]["name"] == "web"
    cells = [c for c, d in zip(row["cells"], table["columnDefinitions"], strict=True) if d["priority"] == 0]
    assert cells == ["web", "1", "True", "1", "", "", "51s"]


# Writes -------------------------------------------------------------------------------------------


def test_create_twice_is_already_exists(kube):
    assert kube("ada", "POST", CRPS, CRP).status_code == 201
    assert status_of(kube("ada", "POST", CRPS, CRP)) == (
        409, "AlreadyExists", 'clusterresourceplacements.placement.kubernetes-fleet.io "web" already exists')


def test_a_put_with_a_stale_resource_version_is_a_conflict(kube):
    created = kube("ada", "POST", CRPS, CRP).json()
    changed = {**created, "spec": {**created["spec"], "revisionHistoryLimit": 3}}
    assert kube("ada", "PUT", f"{CRPS}/web", changed).status_code == 200
    code, reason, message = status_of(kube("ada", "PUT", f"{CRPS}/web", changed))
    assert (code, reason) == (409, "Conflict") and "the object has been modified" in message


def test_an_invalid_object_is_422_with_field_causes(kube):
    doc = {**CRP, "spec": {**CRP["spec"], "policy": {"placementType": "Sometimes"}}}
    response = kube("ada", "POST", CRPS, doc)
    code, reason, _ = status_of(response)
    assert (code, reason) == (422, "Invalid")
    assert any(c["field"].startswith("spec.policy") for c in response.json()["details"]["causes"])


def test_unknown_fields_are_refused_under_strict_and_pruned_under_ignore(kube):
    doc = {**CRP, "spec": {**CRP["spec"], "bogus": 1}}
    code, reason, message = status_of(kube("ada", "POST", f"{CRPS}?fieldValidation=Strict", doc))
    assert (code, reason) == (400, "BadRequest") and 'unknown field "spec.bogus"' in message
    response = kube("ada", "POST", f"{CRPS}?fieldValidation=Warn", doc)
    assert response.status_code == 201 and "unknown field" in response.headers["Warning"]
    assert "bogus" not in response.json()["spec"]


def test_merge_and_json_patches_apply_and_strategic_merge_is_415_for_custom_resources(kube):
    kube("ada", "POST", CRPS, CRP)
    merged = kube("ada", "PATCH", f"{CRPS}/web", {"metadata": {"labels": {"a": "b"}}},
                  content_type="application/merge-patch+json")
    assert merged.json()["metadata"]["labels"] == {"a": "b"}
    patched = kube("ada", "PATCH", f"{CRPS}/web", [{"op": "add", "path": "/spec/revisionHistoryLimit", "value": 4}],
                   content_type="application/json-patch+json")
    assert patched.json()["spec"]["revisionHistoryLimit"] == 4
    assert status_of(kube("ada", "PATCH", f"{CRPS}/web", {"spec": {}},
                          content_type="application/strategic-merge-patch+json"))[:2] == (415, "UnsupportedMediaType")
    assert status_of(kube("ada", "PATCH", f"{CRPS}/web", "a: b",
                          content_type="application/apply-patch+yaml"))[:2] == (415, "UnsupportedMediaType")


def test_a_core_kind_takes_a_strategic_merge_patch(kube):
    kube("ada", "POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                               "metadata": {"name": "test-namespace"}})
    kube("ada", "POST", CMS, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "test-cm"},
                              "data": {"key": "value1"}})
    smp = "application/strategic-merge-patch+json"
    assert kube("ada", "PATCH", f"{CMS}/test-cm", {"data": {"key": "value2"}}, content_type=smp).json()["data"] == {
        "key": "value2"}
    assert kube("ada", "PATCH", f"{CMS}/test-cm", {"data": {"$patch": "replace", "other": "x"}},
                content_type=smp).json()["data"] == {"other": "x"}
    code, _, message = status_of(kube("ada", "PATCH", f"{CMS}/test-cm", {"data": {"$patch": "explode"}},
                                      content_type=smp))
    assert code == 415 and "explode" in message


def test_dry_run_stores_and_audits_nothing(kube):
    events = m.Event.objects.count()
    assert kube("ada", "POST", f"{CRPS}?dryRun=All", CRP).status_code == 201
    assert kube("vic", "GET", f"{CRPS}/web").status_code == 404
    assert m.Event.objects.count() == events


def test_delete_checks_its_preconditions(kube):
    uid = kube("ada", "POST", CRPS, CRP).json()["metadata"]["uid"]
    code, reason, message = status_of(kube("ada", "DELETE", f"{CRPS}/web", {"preconditions": {"uid": "other"}}))
    assert (code, reason) == (409, "Conflict") and message.startswith("Precondition failed: UID in precondition")
    assert kube("ada", "DELETE", f"{CRPS}/web", {"preconditions": {"uid": uid},
                                                 "propagationPolicy": "Foreground"}).status_code == 200
    assert kube("vic", "GET", f"{CRPS}/web").status_code == 404
    assert m.Event.objects.get(action="deleted", object_name="web").details == {"via": "kube-api"}


# Approvals ----------------------------------------------------------------------------------------


def careq_status() -> str:
    return f"{GROUP}/clusterapprovalrequests/{GATE}/status"


def test_a_viewers_approval_by_status_patch_is_403(kube, frozen_clock):
    tutorial_waiting_at_canary()
    response = kube("vic", "PATCH", careq_status(), APPROVED, content_type="application/merge-patch+json")
    assert status_of(response)[:2] == (403, "Forbidden")
    assert approval_request(GATE).condition("Approved") is None


def test_a_release_managers_approval_by_status_patch_approves_audited_via_kube_api(kube, frozen_clock):
    tutorial_waiting_at_canary()
    response = kube("alice", "PATCH", careq_status(), APPROVED, content_type="application/merge-patch+json")
    assert response.status_code == 200
    assert approval_request(GATE).condition_status("Approved") == "True"
    event = m.Event.objects.get(action="approved", object_name=GATE)
    assert (event.actor, event.details["via"], event.details["comment"]) == ("alice", "kube-api", "lgtm")


def test_under_a_quorum_policy_the_status_patch_is_one_vote(kube, frozen_clock, tokens):
    sre = Group.objects.create(name="sre")
    for name in ("alice", "olivia"):
        user_create(username=name, role=RELEASE_MANAGERS)[0].groups.add(sre)
    tutorial_waiting_at_canary(strategy_doc(canary({"quorum": 2, "groups": ["sre"]})))
    response = kube("alice", "PATCH", careq_status(), APPROVED, content_type="application/merge-patch+json")
    assert response.status_code == 200
    assert approval_request(GATE).condition("Approved") is None  # one vote of two
    assert m.ApprovalVote.objects.filter(actor="alice", via="kube-api").count() == 1


# Kinds from applied CRDs, and bounded cost --------------------------------------------------------

WIDGET_CRD = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
              "metadata": {"name": "widgets.example.com"},
              "spec": {"group": "example.com", "scope": "Namespaced",
                       "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "shortNames": ["wd"]},
                       "versions": [{"name": "v1", "served": True, "storage": True,
                                     "schema": {"openAPIV3Schema": {"type": "object",
                                                                    "x-kubernetes-preserve-unknown-fields": True}},
                                     "additionalPrinterColumns": [{"name": "Size", "type": "string",
                                                                   "jsonPath": ".spec.size"}]}]}}


def test_a_kind_from_an_applied_crd_is_discovered_served_and_tabled_with_its_columns(kube):
    assert kube("ada", "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", WIDGET_CRD).status_code == 201
    resources = kube("vic", "GET", "/apis/example.com/v1").json()["resources"]
    assert [(r["name"], r["shortNames"]) for r in resources] == [("widgets", ["wd"])]
    widgets = "/apis/example.com/v1/namespaces/default/widgets"
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"size": "big"}}
    assert kube("ada", "POST", widgets, widget).status_code == 201
    table = kube("vic", "GET", widgets, HTTP_ACCEPT=TABLE).json()
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Size", "Age"]  # the CRD's names, as the API server sends them
    assert table["rows"][0]["cells"][:2] == ["w1", "big"]


def test_a_listed_table_costs_the_same_queries_for_3_or_30_placements(kube, django_assert_max_num_queries):
    def create(names):
        for name in names:
            kube("ada", "POST", CRPS, {**CRP, "metadata": {"name": name}})

    create([f"p{i}" for i in range(3)])
    kube("vic", "GET", CRPS, HTTP_ACCEPT=TABLE)  # the token's last_used is written once a minute
    for more in (0, 27):
        create([f"q{i}" for i in range(more)])
        # The token and its user, the user's permissions (2), the CRDs (KindRegistry), the placements.
        with django_assert_max_num_queries(6):  # the hub revision for the list's metadata is one
            assert len(kube("vic", "GET", CRPS, HTTP_ACCEPT=TABLE).json()["rows"]) == 3 + more


def test_only_the_status_subresource_of_kinds_that_have_one_is_served(kube):
    kube("ada", "POST", CRPS, CRP)
    assert kube("vic", "GET", f"{CRPS}/web/status").status_code == 200
    assert status_of(kube("vic", "GET", f"{CRPS}/web/scale"))[:2] == (404, "NotFound")
    assert status_of(kube("vic", "GET", "/api/v1/namespaces/default/configmaps/x/status"))[:2] == (404, "NotFound")


def test_aggregated_discovery_answers_in_one_document_when_asked_for(kube):
    accept = ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
              "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json")
    response = kube("vic", "GET", "/apis", HTTP_ACCEPT=accept)
    assert response["Content-Type"] == "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    group = next(i for i in response.json()["items"] if i["metadata"]["name"] == "placement.kubernetes-fleet.io")
    resources = {r["resource"]: r for r in group["versions"][0]["resources"]}
    assert group["versions"][0]["version"] == "v1beta1"
    crp = resources["clusterresourceplacements"]
    assert (crp["scope"], crp["shortNames"], crp["subresources"][0]["subresource"]) == ("Cluster", ["crp"], "status")
    core = kube("vic", "GET", "/api", HTTP_ACCEPT=accept).json()["items"]
    assert [i["metadata"]["name"] for i in core] == [""]
    assert kube("vic", "GET", "/apis")["Content-Type"] == "application/json"  # the legacy form otherwise
