"""The audit log (filters, keyset paging, CSV and JSON export) and the query
budgets of the pages that must stay flat as a fleet grows."""

import csv
import io
import json
import re
from datetime import timedelta

import pytest

from rollouts import clock
from rollouts import models as m
from rollouts.roles import RELEASE_MANAGERS, VIEWERS
from tests.conftest import TUTORIAL_START
from tests.fleet_builders import signed_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def vera():
    return signed_in("vera", VIEWERS)


def events(count: int, **fields) -> None:
    """`count` events a minute apart from the tutorial's start."""
    base = {"actor": "olivia", "action": "patched", "object_kind": "ConfigMap", "object_name": "test-cm"}
    m.Event.objects.bulk_create(m.Event(time=TUTORIAL_START + timedelta(minutes=i), **{**base, **fields})
                                for i in range(count))


def body(response) -> str:
    return b"".join(response.streaming_content).decode()


def test_the_audit_log_filters_by_actor_kind_name_action_and_time(vera):
    events(3)
    events(2, actor="rita", action="approved", object_kind="ClusterApprovalRequest", object_name="run-canary",
           message="looks good")
    page = vera.get("/audit/", {"actor": "rita"}).content.decode()
    assert page.count("<td>rita</td>") == 2 and "<td>olivia</td>" not in page
    assert vera.get("/audit/", {"kind": "ConfigMap", "name": "test-cm"}).content.decode().count("<td>olivia</td>") == 3
    assert vera.get("/audit/", {"name": "run-canary"}).content.decode().count("looks good") == 2
    assert vera.get("/audit/", {"action": "approved"}).content.decode().count("<td>approved</td>") == 2
    window = vera.get("/audit/", {"since": "2026-03-02T21:28", "until": "2026-03-02T21:30"}).content.decode()
    assert window.count("<td>olivia</td>") == 2


def test_an_unreadable_time_is_reported_not_a_500(vera):
    events(2)
    response = vera.get("/audit/", {"since": "yesterday-ish"})
    assert response.status_code == 200
    assert "since: &#x27;yesterday-ish&#x27; is not a date and time" in response.content.decode()


def test_the_audit_log_pages_older_and_newer_by_id(vera):
    events(120)
    ids = list(m.Event.objects.order_by("-id").values_list("id", flat=True))
    first = vera.get("/audit/")
    assert first.context["result"].newer is None and first.context["result"].older == ids[49]
    second = vera.get("/audit/", {"before": ids[49]}).context["result"]
    assert [e.id for e in second.rows] == ids[50:100] and second.newer == ids[50]
    third = vera.get("/audit/", {"before": second.older}).context["result"]
    assert [e.id for e in third.rows] == ids[100:] and third.older is None
    back = vera.get("/audit/", {"after": second.newer}).context["result"]
    assert [e.id for e in back.rows] == ids[:50] and back.newer is None


def test_the_csv_export_has_every_filtered_row_with_comment_and_client(vera):
    events(60)
    m.Event.objects.create(time=clock.now(), actor="rita", action="approved", object_kind="ClusterApprovalRequest",
                           object_name="run-canary", message="ok", details={"comment": "=HYPERLINK(1)",
                                                                            "client_address": "10.0.0.9"})
    response = vera.get("/audit/export.csv", {"actor": "rita"})
    assert response["Content-Disposition"] == 'attachment; filename="fleet-audit.csv"'
    rows = list(csv.DictReader(io.StringIO(body(response))))
    assert len(rows) == 1
    assert (rows[0]["actor"], rows[0]["comment"], rows[0]["client_address"]) == ("rita", "'=HYPERLINK(1)", "10.0.0.9")
    # the 61 rows, vera's own login (logins are audited too), and her account
    # (account changes too): created, password set, role given
    assert len(list(csv.DictReader(io.StringIO(body(vera.get("/audit/export.csv")))))) == 65


def test_the_json_export_is_a_list_of_the_filtered_rows(vera):
    events(3)
    events(1, actor="rita")
    rows = json.loads(body(vera.get("/audit/export.json", {"actor": "olivia"})))
    assert [r["actor"] for r in rows] == ["olivia"] * 3
    assert rows[0]["time"] == "2026-03-02T21:27:00+00:00" and rows[0]["details"] == {}
    assert json.loads(body(vera.get("/audit/export.json", {"actor": "nobody"}))) == []


# Query budgets ----------------------------------------------------------------------------


def fake_run(name: str, clusters: int, stages: int = 4) -> m.ClusterStagedUpdateRun:
    """A run mid-rollout with `clusters` clusters (the first stage done, the
    second's first cluster updating), built straight into the status (no
    engine): what the page reads is the same either way."""
    stamp = clock.rfc3339(TUTORIAL_START)
    done = [{"type": t, "status": "True", "reason": r, "lastTransitionTime": stamp}
            for t, r in (("Started", "ClusterUpdatingStarted"), ("Succeeded", "ClusterUpdatingSucceeded"))]
    per_stage = max(1, clusters // stages)
    stage_list = [{"stageName": f"s{s}", "startTime": stamp,
                   "conditions": [{"type": "Progressing", "status": "True", "reason": "StageUpdatingStarted",
                                   "lastTransitionTime": stamp}],
                   "clusters": [{"clusterName": f"c{s}-{i}",
                                 "conditions": done if s == 0 else done[:1] if s == 1 and i == 0 else []}
                                for i in range(per_stage)],
                   "afterStageTaskStatus": [{"type": "Approval", "approvalRequestName": f"{name}-s{s}"}]}
                  for s in range(stages)]
    status = {"conditions": [{"type": "Initialized", "status": "True", "reason": "UpdateRunInitializedSuccessfully",
                              "lastTransitionTime": stamp},
                             {"type": "Progressing", "status": "True", "reason": "UpdateRunProgressing",
                              "lastTransitionTime": stamp}],
              "stagesStatus": stage_list,
              "stagedUpdateStrategySnapshot": {"stages": [{"name": f"s{s}", "afterStageTasks": [{"type": "Approval"}]}
                                                          for s in range(stages)]},
              "deletionStageStatus": {"stageName": "kubernetes-fleet.io/deleteStage", "clusters": []}}
    run = m.ClusterStagedUpdateRun.objects.create(
        name=name, creation_timestamp=TUTORIAL_START, status=status,
        spec={"placementName": "p", "stagedRolloutStrategyName": "s", "resourceSnapshotIndex": "0"})
    m.ClusterApprovalRequest.objects.create(name=f"{name}-s0", creation_timestamp=TUTORIAL_START,
                                            spec={"parentStageRollout": name, "targetStage": "s0"})
    events(5, run=name, object_kind="ClusterStagedUpdateRun", object_name=name)
    return run


@pytest.mark.parametrize("clusters", [4, 1000])
def test_the_run_page_costs_the_same_queries_for_4_or_1000_clusters(django_assert_num_queries, frozen_clock,
                                                                    clusters):
    fake_run("big", clusters)
    rita = signed_in("rita", RELEASE_MANAGERS)
    # session, user, the run, its approval requests, approval Events naming
    # approvers, the approval policies of its strategy, their health checks,
    # the run's latest Events, the user's and the group's permissions
    # (perms.*), the user's groups (header), whether it is mirrored from a
    # hub, the placement's status entries of the clusters updating now (which
    # are failing, for an active run), the freezes holding now (the banner): 14; the nav's count of
    # waiting gates (one per family): 16; its placement's past runs (the ETA,
    # for an active run): 17, for any size.
    with django_assert_num_queries(17):
        response = rita.get("/runs/big/")
    assert response.status_code == 200
    # Every cluster shows, as a map cell (a big stage's table loads when opened).
    assert len(re.findall(r'id="cell-\d+-c\d+-\d+" role="img"', response.content.decode())) == clusters


@pytest.mark.parametrize("rows", [10, 500])
def test_an_audit_page_costs_the_same_queries_for_10_or_500_rows(django_assert_num_queries, vera, rows):
    events(rows)
    # session, user, permissions (user, group), the CRD kinds for the kind
    # filter, one page of rows (LIMIT 51, no COUNT), the user's groups, the
    # freezes holding now (the banner): 8; the nav's count of waiting gates
    # (one per family): 10.
    with django_assert_num_queries(10):
        vera.get("/audit/", {"actor": "olivia"})
    cursor = m.Event.objects.order_by("-id")[5].id
    with django_assert_num_queries(10):
        vera.get("/audit/", {"before": cursor})


@pytest.mark.parametrize("runs", [1, 12])
def test_the_overview_costs_the_same_queries_for_1_or_12_active_runs(django_assert_num_queries, vera, runs):
    for i in range(runs):
        fake_run(f"run{i}", 8)
    # session, user, permissions (user, group), active runs (x2 families),
    # pending approvals (active runs + requests, x2 families), recent events,
    # the user's groups, which runs are mirrored from a hub, the freezes
    # holding now (the banner): 13; "Needs attention": failed runs and
    # failing bindings (one UNION each over the families), the latest
    # decision on the pending gates, failing hub connections: 17; the past
    # runs of the active runs' placements (their ETAs: one window query per
    # family with active runs): 18.
    with django_assert_num_queries(18):
        page = vera.get("/").content.decode()
    assert page.count("of 8 clusters") == runs


def test_a_time_window_pages_by_time_then_id(vera):
    events(120)
    window = {"since": "2026-03-02T21:30", "until": "2026-03-02T23:00"}  # minutes 3..92
    ids = list(m.Event.objects.filter(time__gte=TUTORIAL_START + timedelta(minutes=3),
                                      time__lt=TUTORIAL_START + timedelta(minutes=93))
               .order_by("-time", "-id").values_list("id", flat=True))
    first = vera.get("/audit/", window).context["result"]
    assert [e.id for e in first.rows] == ids[:50]
    second = vera.get("/audit/", {**window, "before": first.older}).context["result"]
    assert [e.id for e in second.rows] == ids[50:90] and second.older is None
    back = vera.get("/audit/", {**window, "after": second.newer}).context["result"]
    assert [e.id for e in back.rows] == ids[:50]
