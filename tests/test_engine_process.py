"""The user's tutorial, sections 4–7, end to end as a person runs it: every
step a separate `python manage.py fleet …` process, with `fleet engine`
running as its own process and a short TimedWait."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .real_services import migrated_sqlite, process_env

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "rollouts" / "demo"
# The tutorial's fleet, workload, placement and strategy are the demo's YAML;
# only the TimedWait is shortened so the test does not wait a minute.
FLEET = "\n---\n".join((DEMO / f).read_text() for f in ("01-members.yaml", "02-workload.yaml", "03-placement.yaml"))
STRATEGY = (DEMO / "04-strategy.yaml").read_text().replace("waitTime: 1m", "waitTime: 2s")
assert "waitTime: 2s" in STRATEGY
RUN = """
apiVersion: placement.kubernetes-fleet.io/v1beta1
kind: ClusterStagedUpdateRun
metadata:
  name: {name}
spec:
  placementName: example-placement
  resourceSnapshotIndex: "{index}"
  stagedRolloutStrategyName: example-strategy
"""
APPROVAL = {
    "status": {
        "conditions": [
            {"lastTransitionTime": "2026-01-01T21:30:00Z", "message": "lgtm", "observedGeneration": 1,
             "reason": "testPassed", "status": "True", "type": "Approved"}
        ]
    }
}


class Hub:
    """A hub in a temporary directory, driven through separate processes;
    its database a copy of one `manage.py migrate` built (the tutorial
    starts on a hub that is set up)."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.env = process_env(DATABASE_URL=migrated_sqlite(tmp / "hub.sqlite3"),
                               FLEET_ENGINE_SOCKET=str(tmp / "engine.sock"), FLEET_SIMULATED_APPLY_SECONDS="0")

    def manage(self, *args, check=True) -> subprocess.CompletedProcess:
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env,
                              capture_output=True, text=True, timeout=120)
        if check and done.returncode != 0:
            raise AssertionError(f"{args} exited {done.returncode}: {done.stderr}")
        return done

    def fleet(self, *args, check=True) -> str:
        return self.manage("fleet", "--as", "tutorial", *args, check=check).stdout

    def apply(self, text: str) -> str:
        path = self.tmp / f"doc{time.monotonic_ns()}.yaml"
        path.write_text(text)
        return self.fleet("apply", "-f", str(path))

    def wait_until_exists(self, *args, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.manage("fleet", *args, check=False).returncode == 0:
                return
            time.sleep(0.3)
        raise AssertionError(f"{args} never appeared")


@pytest.fixture
def hub(tmp_path):
    hub = Hub(tmp_path)
    engine = subprocess.Popen([sys.executable, "manage.py", "fleet", "engine", "--interval", "1"], cwd=ROOT,
                              env=hub.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        yield hub
    finally:
        engine.send_signal(signal.SIGTERM)
        try:
            hub.engine_exit = engine.wait(timeout=15)
        except subprocess.TimeoutExpired:
            engine.kill()
            raise
    assert engine.returncode == 0, engine.stderr.read()


def _member_value(hub: Hub, member: str) -> str:
    out = hub.fleet("get", "configmap", "test-cm", "-n", "test-namespace", "--cluster", member, "-o", "json")
    return json.loads(out)["data"]["key"]


@pytest.mark.slow
def test_the_tutorial_rolls_out_and_rolls_back_through_separate_processes(hub):
    hub.apply(FLEET)
    hub.apply(FLEET.replace("value1", "value2"))
    assert "clusterstagedupdatestrategy.placement.kubernetes-fleet.io/example-strategy created" in hub.apply(STRATEGY)
    hub.apply(RUN.format(name="example-run", index="1"))
    hub.fleet("wait", "csur/example-run", "--for=condition=Initialized", "--timeout=30s")
    table = hub.fleet("get", "csur", "example-run").splitlines()
    assert table[0].split() == ["NAME", "PLACEMENT", "RESOURCE-SNAPSHOT-INDEX", "POLICY-SNAPSHOT-INDEX",
                                "INITIALIZED", "SUCCEEDED", "AGE"]
    assert table[1].split()[:5] == ["example-run", "example-placement", "1", "0", "True"]

    hub.wait_until_exists("get", "clusterapprovalrequest", "example-run-canary")
    requests = hub.fleet("get", "clusterapprovalrequest").splitlines()
    assert requests[0].split() == ["NAME", "UPDATE-RUN", "STAGE", "APPROVED", "APPROVALACCEPTED", "AGE"]
    assert requests[1].split()[:3] == ["example-run-canary", "example-run", "canary"]
    approval = hub.tmp / "approval.json"
    approval.write_text(json.dumps(APPROVAL))
    hub.fleet("patch", "clusterapprovalrequests", "example-run-canary", "--type=merge", "--subresource=status",
              "--patch-file", str(approval))
    hub.fleet("wait", "csur/example-run", "--for=condition=Succeeded", "--timeout=30s")
    assert hub.fleet("get", "clusterapprovalrequest", "example-run-canary").splitlines()[1].split()[3:5] == ["True", "True"]
    crp = hub.fleet("get", "crp", "example-placement").splitlines()[1].split()
    assert crp[:6] == ["example-placement", "1", "True", "1", "True", "1"]
    assert [_member_value(hub, m) for m in ("member1", "member2", "member3")] == ["value2"] * 3

    # Section 6: roll back to snapshot 0 with a second run of the same strategy.
    hub.apply(RUN.format(name="example-run-2", index="0"))
    hub.wait_until_exists("get", "careq", "example-run-2-canary")
    assert "approved" in hub.fleet("approve", "example-run-2-canary", "--message", "roll back")
    hub.fleet("wait", "csur/example-run-2", "--for=condition=Succeeded", "--timeout=30s")
    assert [_member_value(hub, m) for m in ("member1", "member2", "member3")] == ["value1"] * 3
    runs = [line.split() for line in hub.fleet("get", "csur").splitlines()[1:]]
    assert [(r[0], r[2], r[5]) for r in runs] == [("example-run", "1", "True"), ("example-run-2", "0", "True")]
    assert len(hub.fleet("get", "clusterapprovalrequests").splitlines()) == 3

    # Section 7: clean up.
    hub.fleet("delete", "csur", "example-run", "example-run-2")
    hub.fleet("delete", "csus", "example-strategy")
    hub.fleet("delete", "crp", "example-placement")
    hub.fleet("delete", "namespace", "test-namespace")
    assert hub.manage("fleet", "get", "clusterapprovalrequests", check=False).stdout.strip() == ""
