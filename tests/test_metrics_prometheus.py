"""A real Prometheus scrapes a real deployment: daphne serving /metrics with
its bearer token, a Celery worker (two pool processes) and beat advancing
runs on PostgreSQL and a Redis of their own, every process writing into one
PROMETHEUS_MULTIPROC_DIR. PromQL over Prometheus' HTTP API must see what the
workers recorded, added up by the web server's scrape."""

import contextlib
import json
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from .real_services import ROOT, Hub, celery_hub, free_port, missing, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.celery]

PROMETHEUS = Path("/usr/bin/prometheus")
TOKEN = "scrape-token-for-the-test"
RUNS = ("metrics-a", "metrics-b")


def fleet_yaml() -> str:
    """Four members in two rings; a strategy whose first ring waits for an
    approval; a placement and a run for each of RUNS."""
    docs = [{"apiVersion": "cluster.kubernetes-fleet.io/v1beta1", "kind": "MemberCluster",
             "metadata": {"name": f"member{i}", "labels": {"ring": str(i % 2), "order": str(i)}}} for i in range(4)]
    stages = [{"name": f"ring{r}", "labelSelector": {"matchLabels": {"ring": str(r)}}, "sortingLabelKey": "order"}
              for r in range(2)]
    stages[0]["afterStageTasks"] = [{"type": "Approval"}]
    docs.append({"apiVersion": "placement.kubernetes-fleet.io/v1beta1", "kind": "ClusterStagedUpdateStrategy",
                 "metadata": {"name": "two-rings"}, "spec": {"stages": stages}})
    for name in RUNS:
        docs += [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
            {"apiVersion": "placement.kubernetes-fleet.io/v1beta1", "kind": "ClusterResourcePlacement",
             "metadata": {"name": name},
             "spec": {"resourceSelectors": [{"group": "", "version": "v1", "kind": "Namespace", "name": name}],
                      "strategy": {"type": "External"}}},
            {"apiVersion": "placement.kubernetes-fleet.io/v1beta1", "kind": "ClusterStagedUpdateRun",
             "metadata": {"name": f"{name}-run"},
             "spec": {"placementName": name, "resourceSnapshotIndex": "0", "stagedRolloutStrategyName": "two-rings"}},
        ]
    return "\n---\n".join(json.dumps(d) for d in docs)


def http_get(url: str, *, token: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def start_daphne(hub: Hub, tmp: Path) -> int:
    port = free_port()
    log = open(tmp / "daphne.log", "w")  # noqa: SIM115 (closed with the process)
    hub.processes.append(subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "fleetui.asgi:application"],
        cwd=ROOT, env=hub.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
    wait_for(lambda: http_get(f"http://127.0.0.1:{port}/metrics", token=TOKEN)[0] == 200, timeout=60,
             what="daphne to serve /metrics")
    return port


@contextlib.contextmanager
def prometheus(tmp: Path, target_port: int):
    """Prometheus on loopback scraping 127.0.0.1:<target_port>/metrics every second with the token."""
    if not PROMETHEUS.exists():
        missing("prometheus", "apt-get install -y prometheus")
    port = free_port()
    config = tmp / "prometheus.yml"
    config.write_text(json.dumps({  # JSON is YAML
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": "fleetui", "metrics_path": "/metrics",
                            "authorization": {"credentials": TOKEN},
                            "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}]}],
    }))
    log = open(tmp / "prometheus.log", "w")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen([str(PROMETHEUS), f"--config.file={config}", f"--storage.tsdb.path={tmp / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: http_get(f"{base}/-/ready")[0] == 200, timeout=60, what="Prometheus to be ready")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def promql(base: str, query: str) -> list[dict]:
    status, body = http_get(f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": query}))
    assert status == 200, body
    return json.loads(body)["data"]["result"]


def scrape_health(base: str) -> str:
    targets = json.loads(http_get(f"{base}/api/v1/targets")[1])["data"]["activeTargets"]
    return "; ".join(f"{t['scrapeUrl']}: {t['health']} {t['lastError']}" for t in targets)


def test_prometheus_sees_what_the_workers_recorded_through_the_web_servers_scrape(tmp_path):
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus-multiproc"), "FLEET_METRICS_TOKEN": TOKEN,
           "FLEET_METRICS_ALLOW": "192.0.2.1/32",  # not loopback: Prometheus must use its token
           "DEBUG": "false", "SECRET_KEY": "metrics-test-secret", "FLEET_CREDENTIALS_KEY": Fernet.generate_key().decode()}
    with celery_hub(tmp_path, **env) as hub:
        port = start_daphne(hub, tmp_path)
        assert http_get(f"http://127.0.0.1:{port}/metrics")[0] == 401
        hub.worker("w1", concurrency=2)
        hub.beat()
        hub.manage("fleet", "apply", "-f", "-", stdin=fleet_yaml())
        requests = "SELECT name FROM rollouts_clusterapprovalrequest WHERE name LIKE 'metrics-%%'"
        names = wait_for(lambda: [n for (n,) in hub.sql(requests)] if len(hub.sql(requests)) == 2 else None,
                         timeout=120, what="both runs to wait for their approval")
        for name in names:
            hub.manage("fleet", "approve", name, "--message", "lgtm")
        active = "SELECT count(*) FROM rollouts_clusterstagedupdaterun WHERE name LIKE 'metrics-%%' AND active"
        wait_for(lambda: hub.sql(active)[0][0] == 0, timeout=180, what="both runs to finish")

        with prometheus(tmp_path, port) as base:
            succeeded = 'fleet_workload_update_run_status_last_timestamp_seconds{condition="Succeeded",status="True"}'
            try:
                series = wait_for(lambda: promql(base, succeeded) if len(promql(base, succeeded)) == 2 else None,
                                  timeout=60, what="Prometheus to scrape both runs' Succeeded timestamps")
            except AssertionError as exc:
                raise AssertionError(f"{exc}; targets: {scrape_health(base)}") from None
            assert sorted(s["metric"]["name"] for s in series) == [f"{r}-run" for r in RUNS]
            assert {s["metric"]["reason"] for s in series} == {"UpdateRunSucceeded"}

            stages = promql(base, "sum(fleet_workload_update_run_stage_cluster_updating_duration_seconds_count)")
            assert float(stages[0]["value"][1]) == 2 * len(RUNS)  # two rings per run, from every worker process
            approvals = promql(base, "sum by (taskType) (fleet_workload_update_run_approval_request_latency_seconds_count)")
            assert [(a["metric"]["taskType"], float(a["value"][1])) for a in approvals] == [("afterStage", len(RUNS))]
            assert float(promql(base, "sum(fleetui_engine_pass_duration_seconds_count)")[0]["value"][1]) > 0
            woken = promql(base, 'sum(fleetui_engine_wakeup_lag_seconds_count{path="celery"})')
            assert float(woken[0]["value"][1]) >= len(RUNS)  # at least the approvals' wake-ups
            queues = promql(base, "fleetui_celery_queue_depth")
            assert {q["metric"]["queue"] for q in queues} == {"placements", "interactive", "celery", "hubs", "notifications", "health"}
            assert float(promql(base, "fleetui_celery_broker_up")[0]["value"][1]) == 1
        writers = {path.stem.rsplit("_", 1)[-1] for path in (tmp_path / "prometheus-multiproc").glob("*.db")}
        assert len(writers) >= 3, writers  # daphne and the worker's pool processes, added up by one scrape
