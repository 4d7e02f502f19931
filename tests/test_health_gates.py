"""Health gates: the annotation, the pure judge, and the check service with
an injected clock and a fake Prometheus query (tests/test_health_gates_prometheus.py
has the real Prometheus; tests/test_health_gates_celery.py the `health` queue).

Personas: olivia starts the run; alice approves; the check acts as
system:health-gate. The fleet is the tutorial's, waiting at the canary
gate (member3 then member1).
"""

import http.server
import json
import math
import threading
from datetime import timedelta

import pytest
import yaml
from django.contrib.auth.models import Group
from django.test import Client

from rollouts import clock, prometheus
from rollouts import models as m
from rollouts.api import health_gate
from rollouts.api.health_gate import HealthGate, Mode, Query
from rollouts.demo import load_demo
from rollouts.engine import health
from rollouts.engine.loop import health_gates_tick
from rollouts.mirror import hub_sync
from rollouts.roles import RELEASE_MANAGERS, user_create
from rollouts.selectors.health_gates import sparkline
from rollouts.services import freezes, health_gates
from tests.conftest import TUTORIAL_START
from tests.fake_kube import (
    FLEET,
    fleet_object,
    tutorial_approval_request,
    tutorial_hub,
    tutorial_run_status,
)
from tests.fleet_builders import (
    TUTORIAL_STRATEGY,
    approval_request,
    run_obj,
    settle,
    tutorial_waiting_at_canary,
)

GATE = "example-run-canary"
ERROR_RATIO = 'max by (cluster) (app_error_ratio{cluster=~"{clusters}"})'


def declaration(mode: str = "evidence", *, soak: str = "5m", interval: str = "30s", **prom) -> dict:
    return {"stages": {"canary": {"after": {
        "prometheus": {"url": "http://prometheus.test:9090", **prom},
        "queries": [{"name": "error-ratio", "query": ERROR_RATIO, "op": "<", "threshold": 0.01}],
        "soak": soak, "interval": interval, "mode": mode}}}}


def strategy_with(document, *, policy: dict | None = None) -> dict:
    doc = yaml.safe_load(TUTORIAL_STRATEGY)
    doc["metadata"]["annotations"] = {health_gate.ANNOTATION: document if isinstance(document, str)
                                      else json.dumps(document)}
    if policy is not None:
        doc["metadata"]["annotations"]["fleetui.io/approval-policy"] = json.dumps(policy)
    return doc


class FakePrometheus:
    """A query function: every cluster's value is `values[cluster]` (0.001 by
    default) at each step; `down` makes it unreachable. Records each expr."""

    def __init__(self):
        self.values: dict[str, float] = {}
        self.down = False
        self.exprs: list[str] = []

    def __call__(self, *, url, token_env, expr, start, end, step):
        self.exprs.append(expr)
        if self.down:
            raise prometheus.PrometheusUnavailable(f"cannot reach {url}: [Errno 111] Connection refused")
        times = [start + i * step for i in range(int((end - start) / step) + 1)] or [end]
        return tuple(health.Series(f'cluster="{c}"', tuple((t, self.values.get(c, 0.001)) for t in times))
                     for c in ("member3", "member1"))


@pytest.fixture
def prom():
    return FakePrometheus()


@pytest.fixture
def gated(db, frozen_clock):
    def build(document, **kwargs):
        tutorial_waiting_at_canary(strategy_with(document, **kwargs))
        return approval_request(GATE)

    return build


def check(prom):
    return health_gates.health_gate_check(kind="ClusterApprovalRequest", namespace="", name=GATE, query=prom)


# The annotation -------------------------------------------------------------------------


def test_a_valid_declaration_parses_with_its_defaults():
    [gate] = health_gate.parse(strategy_with({"stages": {"canary": {"after": {
        "prometheus": {"url": "http://prom:9090/"}, "soak": "2m",
        "queries": [{"name": "up", "query": "min(up)", "op": ">=", "threshold": 1}]}}}}))
    assert gate == HealthGate("canary", "after", "http://prom:9090", "", (Query("up", "min(up)", ">=", 1.0),),
                              120.0, 30.0, Mode.EVIDENCE)


@pytest.mark.parametrize(("change", "field", "words"), [
    pytest.param({"mode": "yolo"}, "canary.after.mode", "supported values", id="mode"),
    pytest.param({"soak": "five minutes"}, "canary.after.soak", "not a duration", id="soak"),
    pytest.param({"interval": "10ms"}, "canary.after.interval", "at least 100ms", id="interval"),
    pytest.param({"prometheus": {"url": "file:///etc/passwd"}}, "canary.after.prometheus.url", "http://", id="url"),
    pytest.param({"prometheus": {"url": "http://u:p@prom:9090"}}, "canary.after.prometheus.url", "credentials",
                 id="url-credentials"),
    pytest.param({"prometheus": {"url": "http://prom", "bearerTokenEnv": "s3cr3t token"}},
                 "canary.after.prometheus.bearerTokenEnv", "never the token itself", id="token-value"),
    pytest.param({"prometheus": {"url": "http://evil.example", "bearerTokenEnv": "SECRET_KEY"}},
                 "canary.after.prometheus.bearerTokenEnv", "starting with FLEET_PROMETHEUS_", id="token-any-variable"),
    pytest.param({"queries": []}, "canary.after.queries", "1 to 10 queries", id="no-queries"),
    pytest.param({"queries": [{"name": "x", "query": "up", "op": "=~", "threshold": 1}]},
                 "canary.after.queries[0].op", "supported values", id="op"),
    pytest.param({"queries": [{"name": "x", "query": "up", "op": "<", "threshold": "1"}]},
                 "canary.after.queries[0].threshold", "must be a number", id="threshold"),
    pytest.param({"extra": 1}, "canary.after.extra", "supported fields", id="unknown-field"),
])
def test_a_bad_declaration_is_refused_naming_the_field(change, field, words):
    document = declaration()
    document["stages"]["canary"]["after"].update(change)
    problems = health_gate.problems(strategy_with(document))
    assert any(path.endswith(field) and words in message for path, message in problems), problems


def test_a_gate_without_an_approval_task_cannot_have_a_health_gate():
    document = {"stages": {"staging": declaration()["stages"]["canary"]}}
    [(path, message)] = health_gate.problems(strategy_with(document))
    assert path.endswith("stages.staging.after") and "no Approval task" in message


def test_fleet_apply_refuses_a_bad_health_gate(db, fleet):
    document = declaration()
    document["stages"]["canary"]["after"]["mode"] = "auto"
    result = fleet("apply", "-f", "-", stdin=json.dumps(strategy_with(document)))
    assert result.code != 0
    assert "fleetui.io/health-gate" in result.err and "mode" in result.err
    assert not m.ClusterStagedUpdateStrategy.objects.exists()


def test_clusters_expand_to_a_regex_of_exactly_the_stages_cluster_names():
    query = Query("e", 'sum(x{cluster=~"{clusters}"})', "<", 1)
    assert health_gate.expand(query, ["member3", "member1", "eu.prod-1"]) == \
        'sum(x{cluster=~"member3|member1|eu\\\\.prod-1"})'


def test_the_graph_link_opens_prometheus_on_the_query():
    url = health_gate.graph_url("http://prom:9090", 'max(x{a="b"})', 300)
    assert url.startswith("http://prom:9090/graph?g0.expr=max%28x%7Ba%3D%22b%22%7D%29")
    assert "g0.range_input=5m" in url


# The judge (pure) -------------------------------------------------------------------------

OPENED = TUTORIAL_START
GATE_DECL = HealthGate("canary", "after", "http://p", "", (Query("err", "e", "<", 0.01),), 300.0, 30.0,
                       Mode.AUTO_APPROVE)


def answer(*values, error: str = "", start: float = OPENED.timestamp(), step: float = 30.0) -> health.Answer:
    points = tuple((start + i * step, v) for i, v in enumerate(values))
    return health.Answer(GATE_DECL.queries[0], "e", (health.Series('cluster="member3"', points),) if values else (),
                         error)


@pytest.mark.parametrize(("mode", "answer_", "after", "verdict", "action"), [
    pytest.param(Mode.AUTO_APPROVE, answer(0.001, 0.002), 60, "soaking", "none", id="healthy-before-the-soak"),
    pytest.param(Mode.AUTO_APPROVE, answer(*[0.001] * 11), 300, "healthy", "approve", id="healthy-after-the-soak"),
    pytest.param(Mode.EVIDENCE, answer(*[0.001] * 11), 300, "healthy", "none", id="evidence-only-shows"),
    pytest.param(Mode.AUTO_APPROVE, answer(0.001, 0.5, 0.001), 300, "failing", "none",
                 id="auto-approve-never-rejects"),
    pytest.param(Mode.AUTO_REJECT, answer(0.001, 0.5), 60, "failing", "reject", id="failing-rejects"),
    pytest.param(Mode.AUTO_REJECT, answer(*[0.001] * 11), 300, "healthy", "none", id="auto-reject-never-approves"),
    pytest.param(Mode.AUTO_APPROVE, answer(error="cannot reach http://p"), 600, "unknown", "none",
                 id="unreachable-is-unknown-never-healthy"),
    pytest.param(Mode.AUTO_APPROVE, answer(), 600, "unknown", "none", id="no-data-is-unknown"),
    pytest.param(Mode.AUTO_APPROVE, answer(0.001, math.nan), 300, "unknown", "none", id="nan-is-unknown"),
    pytest.param(Mode.AUTO_REJECT, answer(0.5, start=OPENED.timestamp() - 60), 30, "unknown", "none",
                 id="samples-before-the-gate-opened-do-not-count"),
])
def test_the_judge(mode, answer_, after, verdict, action):
    gate = HealthGate(**{**GATE_DECL.__dict__, "mode": mode})
    judgement = health.judge(gate, [answer_], opened=OPENED, now=OPENED + timedelta(seconds=after))
    assert (judgement.verdict, judgement.action) == (verdict, action)


def test_a_failing_verdict_names_the_query_the_value_and_the_cluster():
    judgement = health.judge(GATE_DECL, [answer(0.001, 0.25)], opened=OPENED, now=OPENED + timedelta(seconds=60))
    assert judgement.message == 'health gate failed: err = 0.25 on cluster="member3" (healthy: < 0.01)'


def test_the_sparkline_fits_the_box_and_draws_the_threshold():
    spark = sparkline([{"points": [[0, 0.0], [1, 0.5], [2, None], [3, 1.0]]}], 0.5)
    assert spark.lines == ("2.0,26.0 40.7,14.0 118.0,2.0",)
    assert spark.threshold_y == 14.0
    assert sparkline([{"points": []}], 1) is None


# The service -------------------------------------------------------------------------------


def test_evidence_mode_records_each_query_and_approves_nothing(gated, prom):
    gated(declaration("evidence"))
    clock.advance(600)

    row = check(prom)

    assert row.verdict == "healthy" and row.outcome == ""
    assert prom.exprs == ['max by (cluster) (app_error_ratio{cluster=~"member3|member1"})']
    [result] = row.results
    assert (result["name"], result["verdict"], result["value"]) == ("error-ratio", "passing", 0.001)
    assert result["graph"].startswith("http://prometheus.test:9090/graph?g0.expr=")
    assert {s["labels"] for s in result["series"]} == {'cluster="member3"', 'cluster="member1"'}
    assert approval_request(GATE).condition_status("Approved") == ""


def test_auto_approve_waits_for_the_soak_then_approves_as_the_health_gate(gated, prom):
    gated(declaration("auto-approve", soak="5m", interval="30s"))

    assert check(prom).verdict == "soaking"
    assert check(prom) is None  # not due again before the interval: the claim holds
    clock.advance(301)
    row = check(prom)

    assert (row.verdict, row.outcome) == ("healthy", "approved")
    approval = m.Event.objects.get(action=m.Event.Action.APPROVED, object_name=GATE)
    assert approval.actor == "system:health-gate" and approval.details["via"] == "health-gate"
    assert "error-ratio 0.001 (healthy: < 0.01) over 5m" in approval.message
    settle()
    assert run_obj().condition_status("Succeeded") == "True"


def test_auto_reject_rejects_with_the_reason_and_stops_the_run(gated, prom):
    gated(declaration("auto-reject"))
    prom.values["member1"] = 0.2

    row = check(prom)

    assert (row.verdict, row.outcome) == ("failing", "rejected")
    rejected = m.Event.objects.get(action=m.Event.Action.REJECTED)
    assert rejected.actor == "system:health-gate"
    assert rejected.message == 'health gate failed: error-ratio = 0.2 on cluster="member1" (healthy: < 0.01)'
    assert run_obj().spec["state"] == "Stop"
    assert health_gates.health_gates_due() == []  # a stopped run is not checked


def test_an_unreachable_prometheus_is_unknown_and_never_approves(gated, prom):
    gated(declaration("auto-approve", soak="1m"))
    prom.down = True

    for _ in range(5):
        clock.advance(31)
        row = check(prom)

    assert row.verdict == "unknown" and row.outcome == ""
    assert "Connection refused" in row.message
    assert approval_request(GATE).condition_status("Approved") == ""


def test_a_missing_token_variable_is_unknown_and_named_without_a_value(gated, monkeypatch):
    gated(declaration("auto-approve", soak="0s", bearerTokenEnv="FLEET_PROMETHEUS_TEST_TOKEN"))
    monkeypatch.delenv("FLEET_PROMETHEUS_TEST_TOKEN", raising=False)

    row = health_gates.health_gate_check(kind="ClusterApprovalRequest", namespace="", name=GATE)

    assert row.verdict == "unknown"
    assert "FLEET_PROMETHEUS_TEST_TOKEN (the bearer token) is not set" in row.message


def test_under_an_approval_policy_auto_approve_is_refused_once_and_people_decide(gated, prom):
    user_create(username="alice", role=RELEASE_MANAGERS)
    gated(declaration("auto-approve", soak="0s"), policy={"stages": {"canary": {"after": {"quorum": 1}}}})

    row = check(prom)
    clock.advance(31)
    again = check(prom)

    assert (row.verdict, row.outcome) == ("healthy", "refused") and again.outcome == "refused"
    assert m.Event.objects.filter(action=m.Event.Action.DENIED, actor="system:health-gate").count() == 1
    assert approval_request(GATE).condition_status("Approved") == ""
    assert "not approved automatically" in again.message


def test_the_due_list_holds_waiting_gates_until_their_next_check(gated, prom):
    gated(declaration("evidence", interval="30s"))
    ref = health_gates.GateRef("ClusterApprovalRequest", "", GATE)

    assert health_gates.health_gates_due() == [ref]
    check(prom)
    assert health_gates.health_gates_due() == []
    clock.advance(30)
    assert health_gates.health_gates_due() == [ref]


def test_a_strategy_without_the_annotation_has_no_gates_due(db, frozen_clock):
    tutorial_waiting_at_canary()
    assert health_gates.health_gates_due() == []


def test_the_embedded_health_tick_checks_what_is_due(gated, monkeypatch, prom):
    gated(declaration("auto-approve", soak="0s"))
    monkeypatch.setattr(prometheus, "query_range", prom)
    monkeypatch.setattr(health_gates.health_gate_check, "__kwdefaults__", {"query": prom})

    assert health_gates_tick() == 1
    assert approval_request(GATE).condition_status("Approved") == "True"


def test_the_engine_pass_never_asks_prometheus(gated, prom, monkeypatch):
    def refuse(**_):
        raise AssertionError("an engine pass asked Prometheus")

    monkeypatch.setattr(prometheus, "query_range", refuse)
    monkeypatch.setattr(health_gates.health_gate_check, "__kwdefaults__", {"query": refuse})
    gated(declaration("auto-approve", soak="0s"))  # settles the engine several times
    settle()
    assert approval_request(GATE).condition_status("Approved") == ""


# The pages ---------------------------------------------------------------------------------


def approver_client() -> Client:
    user, _ = user_create(username="alice", role=RELEASE_MANAGERS)
    user.groups.add(Group.objects.get_or_create(name="sre")[0])
    client = Client()
    client.force_login(user)
    return client


def test_the_approve_dialog_shows_each_query_with_its_sparkline_and_graph_link(gated, prom):
    gated(declaration("evidence"))
    clock.advance(120)
    prom.values["member3"] = 0.004
    check(prom)

    html = approver_client().get(f"/approvals/{GATE}/").content.decode()

    assert "Health gate:" in html and "soaking" in html
    assert 'class="sparkline"' in html and "<polyline" in html and "spark-threshold" in html
    assert "http://prometheus.test:9090/graph?g0.expr=" in html
    assert "0.004" in html and "&lt; 0.01" in html and 'style="' not in html.split("health-gate", 1)[1][:4000]


def test_the_run_page_shows_the_health_gate_under_its_approval_task(gated, prom):
    gated(declaration("auto-reject"))
    prom.down = True
    check(prom)
    client = approver_client()

    html = client.get("/runs/example-run/").content.decode()

    assert "Health gate:" in html and "unknown" in html and "Connection refused" in html


# A mirrored KubeFleet hub ------------------------------------------------------------------


def test_on_a_mirrored_hub_the_health_gate_approves_with_the_status_merge_patch(fake, hub, prom):
    tutorial_hub(fake)
    strategy = fake.get(f"{FLEET}/v1beta1", "ClusterStagedUpdateStrategy", "example-strategy")
    fake.put(fleet_object("ClusterStagedUpdateStrategy", "example-strategy", spec=strategy["spec"], annotations={
        health_gate.ANNOTATION: json.dumps(declaration("auto-approve", soak="0s"))}))
    run = fake.get(f"{FLEET}/v1beta1", "ClusterStagedUpdateRun", "example-run")
    fake.put({**run, "status": tutorial_run_status("canary-waiting")})
    fake.put(tutorial_approval_request())
    hub_sync(connection_id=hub.pk, seconds=0.5)

    row = check(prom)

    assert (row.verdict, row.outcome) == ("healthy", "approved")
    [patch] = fake.requests_to("PATCH")
    assert patch.path == f"/apis/{FLEET}/v1beta1/clusterapprovalrequests/{GATE}/status"
    assert patch.content_type == "application/merge-patch+json"
    [approved] = patch.body["status"]["conditions"]
    assert (approved["type"], approved["status"], approved["reason"]) == (
        "Approved", "True", "ClusterApprovalRequestApproved")
    assert approved["message"].startswith("health gate passed: error-ratio 0.001")
    assert approved["message"].endswith("(approved by system:health-gate in Fleet UI)")
    assert m.Event.objects.get(action="approved", object_name=GATE).details["hub"] == "prod-hub"


# The `fleet` command -----------------------------------------------------------------------


def test_fleet_health_shows_each_query_like_the_dialog(gated, prom, fleet):
    gated(declaration("evidence"))
    prom.values["member3"] = 0.05
    check(prom)

    result = fleet("health", GATE)

    assert result.code == 0, result.err
    assert f"{GATE}: health gate failing (evidence: evidence for the approver: a person decides)" in result.out
    assert 'health gate failed: error-ratio = 0.05 on cluster="member3" (healthy: < 0.01)' in result.out
    row = next(line for line in result.out.splitlines() if line.startswith("error-ratio"))
    assert "0.05" in row and "< 0.01" in row and "fail" in row and "http://prometheus.test:9090/graph?" in row


def test_fleet_health_of_an_unknown_request_names_it(db, fleet):
    result = fleet("health", "nope")
    assert result.code != 0 and '"nope" not found' in result.err


def test_the_demo_strategy_has_an_evidence_health_gate_on_the_canary(db, frozen_clock):
    load_demo()
    strategy = m.ClusterStagedUpdateStrategy.objects.get(name="example-strategy")
    [gate] = health_gate.parse(health_gates.strategy_manifest(strategy))
    assert (gate.stage, gate.gate, gate.mode) == ("canary", "after", Mode.EVIDENCE)


def test_the_celery_lister_queues_one_check_per_gate_until_it_has_run(gated, prom):
    gated(declaration("evidence", interval="30s"))
    sent = []

    assert health_gates.health_gates_enqueue_due(sent.append) == 1
    clock.advance(5)
    assert health_gates.health_gates_enqueue_due(sent.append) == 0  # still queued: no second task
    check(prom)  # the worker ran it: the next one is due after the interval
    clock.advance(30)
    assert health_gates.health_gates_enqueue_due(sent.append) == 1
    assert sent == [health_gates.GateRef("ClusterApprovalRequest", "", GATE)] * 2


def test_a_check_nobody_took_is_queued_again_after_a_minute(gated):
    gated(declaration("evidence", interval="30s"))
    sent = []
    health_gates.health_gates_enqueue_due(sent.append)
    clock.advance(59)
    assert health_gates.health_gates_enqueue_due(sent.append) == 0
    clock.advance(2)
    assert health_gates.health_gates_enqueue_due(sent.append) == 1


# The Prometheus client -----------------------------------------------------------------------


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: list = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        self.seen.append((self.path, self.headers.get("Authorization")))
        if self.path.startswith("/moved"):
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.1:9/api/v1/query_range")
            self.end_headers()
            return
        body = json.dumps({"status": "success", "data": {"resultType": "matrix", "result": [
            {"metric": {"__name__": "x", "cluster": "member3"}, "values": [[1.5, "0.25"], [2.0, "NaN"]]}]}})
        self.send_response(200)
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass


@pytest.fixture
def recorder():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Recorder.seen = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_the_client_sends_the_token_and_reads_the_matrix(recorder, monkeypatch):
    monkeypatch.setenv("FLEET_PROMETHEUS_TOKEN", "t0ken")
    [series] = prometheus.query_range(url=recorder, token_env="FLEET_PROMETHEUS_TOKEN", expr="x", start=1, end=2,
                                      step=0.5)
    assert series.labels == 'cluster="member3"'
    assert series.points[0] == (1.5, 0.25) and math.isnan(series.points[1][1])
    assert _Recorder.seen == [("/api/v1/query_range", "Bearer t0ken")]


def test_the_client_follows_no_redirect_so_the_token_stays_home(recorder, monkeypatch):
    monkeypatch.setenv("FLEET_PROMETHEUS_TOKEN", "t0ken")
    with pytest.raises(prometheus.PrometheusUnavailable) as refused:
        prometheus.query_range(url=f"{recorder}/moved", token_env="FLEET_PROMETHEUS_TOKEN", expr="x", start=1,
                               end=2, step=1)
    assert "HTTP 302" in str(refused.value) and "t0ken" not in str(refused.value)
    assert len(_Recorder.seen) == 1


def test_the_client_never_reads_a_variable_not_made_for_it(monkeypatch):
    with pytest.raises(prometheus.PrometheusUnavailable, match="FLEET_PROMETHEUS_"):
        prometheus.query_range(url="http://127.0.0.1:9", token_env="SECRET_KEY", expr="x", start=1, end=2, step=1)


def test_during_a_freeze_auto_approve_waits_without_a_denial_and_approves_once_it_ends(gated, prom):
    gated(declaration("auto-approve", soak="0s", interval="30s"))
    freezes.freeze_create(name="black-friday", reason="sales", actor="olivia")

    row = check(prom)

    assert row.verdict == "healthy" and row.outcome == ""
    assert "a freeze holds the run" in m.HealthCheck.objects.get().message
    assert not m.Event.objects.filter(action=m.Event.Action.DENIED).exists()
    assert approval_request(GATE).condition_status("Approved") == ""
    freezes.freeze_end(name="black-friday", actor="olivia")
    clock.advance(30)
    assert check(prom).outcome == "approved"
