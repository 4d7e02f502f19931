"""The embedded mode: `fleet engine` as its own process checks the demo's
health gate (evidence mode) in its health thread, beside its passes, and
`fleet health` in another process shows it "unknown" when no Prometheus
answers; the run waits for a person as in the tutorial."""

import json
import time

import pytest

from .real_services import free_port
from .test_engine_process import FLEET, RUN, STRATEGY, hub  # noqa: F401 (the `fleet engine` hub fixture)

pytestmark = pytest.mark.slow


@pytest.mark.soak  # waits for the engine's health tick
def test_the_embedded_engine_checks_the_demo_health_gate_and_finds_it_unknown_without_prometheus(hub):  # noqa: F811
    nowhere = f"http://127.0.0.1:{free_port()}"
    hub.apply(FLEET)
    hub.apply(FLEET.replace("value1", "value2"))
    hub.apply(STRATEGY.replace("http://127.0.0.1:9090", nowhere))
    hub.apply(RUN.format(name="example-run", index="1"))
    hub.wait_until_exists("get", "careq", "example-run-canary")

    deadline = time.monotonic() + 60
    while "health gate unknown" not in (shown := hub.fleet("health", "example-run-canary")):
        assert time.monotonic() < deadline, shown
        time.sleep(0.5)

    assert f"health unknown: clusters-up: cannot reach {nowhere}" in shown
    assert "evidence" in shown
    request = json.loads(hub.fleet("get", "careq", "example-run-canary", "-o", "json"))
    assert not [c for c in (request.get("status") or {}).get("conditions") or [] if c["type"] == "Approved"]
