"""Health gates against a real Prometheus (/usr/bin/prometheus, `make
test-tools`) on loopback, scraping every second a small exporter the test
controls: the canary clusters' error ratio, healthy until the test raises it
on one cluster.

The fleet is built under a frozen clock set two minutes back (the engine's
TimedWait needs one); the checks run on the real clock, as Prometheus does.
"""

import contextlib
import http.server
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from rollouts import clock
from rollouts import models as m
from rollouts.services import health_gates
from tests.fleet_builders import approval_request, run_obj, tutorial_waiting_at_canary
from tests.test_health_gates import GATE, declaration, strategy_with
from tests.test_metrics_prometheus import prometheus, promql

pytestmark = [pytest.mark.slow, pytest.mark.django_db]


class Exporter:
    """/metrics with `app_error_ratio{cluster="…"}` for the tutorial's members."""

    def __init__(self):
        self.ratios = {"member1": 0.001, "member2": 0.001, "member3": 0.002}
        exporter = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                body = "# TYPE app_error_ratio gauge\n" + "".join(
                    f'app_error_ratio{{cluster="{c}"}} {v}\n' for c, v in sorted(exporter.ratios.items()))
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def exporter():
    server = Exporter()
    yield server
    server.close()


@contextlib.contextmanager
def prometheus_scraping(tmp_path, exporter):
    with prometheus(tmp_path, exporter.port) as base:
        wait_until(lambda: len(promql(base, "app_error_ratio")) == 3, what="Prometheus to scrape the exporter")
        yield base


def wait_until(predicate, *, what: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def gate_waiting(base: str, mode: str) -> None:
    """The tutorial's run at the canary gate, its health gate asking `base`
    every 0.5 s with a 2 s soak."""
    document = declaration(mode, soak="2s", interval="500ms")
    document["stages"]["canary"]["after"]["prometheus"]["url"] = base
    with clock.frozen(datetime.now(UTC) - timedelta(minutes=2)):
        tutorial_waiting_at_canary(strategy_with(document))


def check_until(outcome_or_verdict, *, timeout: float = 30.0) -> m.HealthCheck:
    def checked():
        row = health_gates.health_gate_check(kind="ClusterApprovalRequest", namespace="", name=GATE)
        row = row or m.HealthCheck.objects.filter(request_name=GATE).first()
        return row if row and outcome_or_verdict(row) else None

    return wait_until(checked, what="the health gate's check", timeout=timeout)


def test_a_healthy_canary_is_approved_by_the_health_gate(tmp_path, exporter):
    with prometheus_scraping(tmp_path, exporter) as base:
        gate_waiting(base, "auto-approve")

        row = check_until(lambda r: r.outcome == "approved")

    assert row.verdict == "healthy"
    assert row.results[0]["expr"] == 'max by (cluster) (app_error_ratio{cluster=~"member3|member1"})'
    assert {s["labels"] for s in row.results[0]["series"]} == {'cluster="member1"', 'cluster="member3"'}
    assert row.results[0]["value"] == 0.002  # the worst canary cluster; member2 (staging) is not asked
    assert approval_request(GATE).condition_status("Approved") == "True"
    approval = m.Event.objects.get(action="approved", object_name=GATE)
    assert approval.actor == "system:health-gate" and "error-ratio 0.002" in approval.message


def test_an_error_rate_rising_on_one_canary_cluster_rejects_and_stops_the_run(tmp_path, exporter):
    with prometheus_scraping(tmp_path, exporter) as base:
        gate_waiting(base, "auto-reject")
        assert check_until(lambda r: r.verdict == "healthy").outcome == ""

        exporter.ratios["member1"] = 0.3
        row = check_until(lambda r: r.outcome == "rejected")

    assert row.verdict == "failing"
    rejected = m.Event.objects.get(action="rejected")
    assert rejected.actor == "system:health-gate"
    assert rejected.message == 'health gate failed: error-ratio = 0.3 on cluster="member1" (healthy: < 0.01)'
    assert run_obj().spec["state"] == "Stop"
    assert approval_request(GATE).condition_status("Approved") == ""


def test_a_stopped_prometheus_makes_the_gate_unknown_never_healthy(tmp_path, exporter):
    with prometheus_scraping(tmp_path, exporter) as base:
        gate_waiting(base, "auto-approve")
        m.HealthCheck.objects.all().delete()
    # Prometheus is stopped now: the healthy samples it had are out of reach.

    row = check_until(lambda r: r.checked_at is not None)

    assert (row.verdict, row.outcome) == ("unknown", "")
    assert f"cannot reach {base}" in row.message
    assert approval_request(GATE).condition_status("Approved") == ""
