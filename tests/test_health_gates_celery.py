"""Health gates on real Celery processes (PostgreSQL, Redis): beat sends the
checks to the `health` queue, which the engine's workers never take; a
worker consuming `health` checks the gate and approves it, and the engine's
workers carry the run to the end. Prometheus is a stand-in HTTP server here
(tests/test_health_gates_prometheus.py has the real one)."""

import http.server
import json
import threading
import time
import urllib.parse

import pytest
import redis

from .real_services import celery_hub, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.celery]


class HealthyPrometheus:
    """Answers every range query with a healthy sample per canary cluster at each step."""

    def __init__(self):
        self.queries: list[str] = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                form = urllib.parse.parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
                owner.queries.append(form["query"][0])
                start, end, step = (float(form[k][0]) for k in ("start", "end", "step"))
                times = [start + i * step for i in range(int((end - start) / step) + 1)] or [end]
                result = [{"metric": {"cluster": c}, "values": [[t, "0.001"] for t in times]}
                          for c in ("member0", "member1")]
                body = json.dumps({"status": "success", "data": {"resultType": "matrix", "result": result}})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def fleet_yaml(prometheus_url: str) -> str:
    """Two canary members in one stage gated by an approval with an auto-approve health gate."""
    gate = {"stages": {"canary": {"after": {
        "prometheus": {"url": prometheus_url},
        "queries": [{"name": "error-ratio", "query": 'max(app_error_ratio{cluster=~"{clusters}"})', "op": "<",
                     "threshold": 0.01}],
        "soak": "1s", "interval": "500ms", "mode": "auto-approve"}}}}
    docs = [{"apiVersion": "cluster.kubernetes-fleet.io/v1beta1", "kind": "MemberCluster",
             "metadata": {"name": f"member{i}", "labels": {"environment": "canary"}}} for i in range(2)]
    docs += [
        {"apiVersion": "placement.kubernetes-fleet.io/v1beta1", "kind": "ClusterStagedUpdateStrategy",
         "metadata": {"name": "canary-first", "annotations": {"fleetui.io/health-gate": json.dumps(gate)}},
         "spec": {"stages": [{"name": "canary", "labelSelector": {"matchLabels": {"environment": "canary"}},
                              "afterStageTasks": [{"type": "Approval"}]}]}},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}},
        {"apiVersion": "placement.kubernetes-fleet.io/v1beta1", "kind": "ClusterResourcePlacement",
         "metadata": {"name": "shop"},
         "spec": {"resourceSelectors": [{"group": "", "version": "v1", "kind": "Namespace", "name": "shop"}],
                  "strategy": {"type": "External"}}},
        {"apiVersion": "placement.kubernetes-fleet.io/v1beta1", "kind": "ClusterStagedUpdateRun",
         "metadata": {"name": "shop-run"},
         "spec": {"placementName": "shop", "resourceSnapshotIndex": "0", "stagedRolloutStrategyName": "canary-first"}},
    ]
    return "\n---\n".join(json.dumps(d) for d in docs)


@pytest.fixture
def prom():
    server = HealthyPrometheus()
    yield server
    server.close()


def test_a_worker_on_the_health_queue_checks_the_gate_and_approves_it(tmp_path, prom):
    with celery_hub(tmp_path, FLEET_HEALTH_TICK_SECONDS="0.5") as hub:
        hub.worker("engine")  # the interactive and default queues, not `health`
        hub.beat()
        hub.manage("fleet", "apply", "-f", "-", stdin=fleet_yaml(prom.url))
        wait_for(lambda: hub.sql("SELECT count(*) FROM rollouts_clusterapprovalrequest")[0][0] == 1, timeout=60,
                 what="the run to reach its gate")
        time.sleep(3)  # beat lists the gate six times meanwhile
        # One check waits on the `health` queue (not one per tick), and nobody else took it.
        assert redis.Redis.from_url(hub.redis.url).llen("health") == 1
        assert hub.sql("SELECT count(*) FROM rollouts_healthcheck WHERE checked_at IS NOT NULL")[0][0] == 0
        assert prom.queries == []

        hub.start("worker", "-Q", "health", "--concurrency", "1", "-n", "health@%h", "--without-gossip",
                  "--without-mingle", "--loglevel", "WARNING", name="health")

        wait_for(lambda: hub.sql("SELECT count(*) FROM rollouts_clusterstagedupdaterun WHERE "
                                 "status->'conditions' @> '[{\"type\": \"Succeeded\", \"status\": \"True\"}]'")[0][0],
                 timeout=90, what="the run to succeed after the health gate approved it")
        [(verdict, outcome)] = hub.sql("SELECT verdict, outcome FROM rollouts_healthcheck")
        assert (verdict, outcome) == ("healthy", "approved")
        [(actor, message)] = hub.sql("SELECT actor, message FROM rollouts_event WHERE action = 'approved'")
        assert actor == "system:health-gate" and message.startswith("health gate passed: error-ratio 0.001")
    assert prom.queries and set(prom.queries) == {'max(app_error_ratio{cluster=~"member0|member1"})'}
