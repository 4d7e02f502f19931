"""Proof with a real client: stock kubectl (v1.32, on PATH) drives the seed
tutorial against `fleet serve` on HTTPS (kubectl sends tokens only over TLS),
with a self-signed certificate its kubeconfig trusts (docs/kube-api.md).

One hub process for the module; each kubectl call is a process of its own."""

import base64
import datetime
import ipaddress
import json
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from rollouts.demo import DEMO_DIR

from .real_services import ROOT, free_port, migrated_sqlite, process_env, wait_for

pytestmark = pytest.mark.slow

GATE = "example-run-canary"
SHORT_SOAK_STRATEGY = (DEMO_DIR / "04-strategy.yaml").read_text().replace("waitTime: 1m", "waitTime: 1s")
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
APPROVE = {"status": {"conditions": [{"type": "Approved", "status": "True", "reason": "lgtm", "message": "lgtm",
                                      "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1}]}}
USERS = """\
from rollouts.roles import user_create
from rollouts.services.tokens import token_create
import json
out = {}
for name, role in (("ada", "admins"), ("alice", "release managers"), ("vic", "viewers")):
    out[name] = token_create(user=user_create(username=name, role=role)[0], name="kubectl", actor="test")[1]
print(json.dumps(out))
"""


def self_signed(tmp: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fleet-ui test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class Kubectl:
    """kubectl as each persona, with a kubeconfig that trusts the hub's certificate."""

    def __init__(self, tmp: Path, server: str, cert: Path, tokens: dict[str, str]):
        self.tmp, self.configs = tmp, {}
        for persona, token in tokens.items():
            config = {"apiVersion": "v1", "kind": "Config", "current-context": "fleet",
                      "clusters": [{"name": "fleet", "cluster": {
                          "server": server, "certificate-authority-data": base64.b64encode(cert.read_bytes()).decode()}}],
                      "users": [{"name": persona, "user": {"token": token}}],
                      "contexts": [{"name": "fleet", "context": {"cluster": "fleet", "user": persona}}]}
            path = tmp / f"{persona}.kubeconfig"
            path.write_text(yaml.safe_dump(config))
            self.configs[persona] = path

    def __call__(self, persona: str, *args: str, stdin: str | None = None, check: bool = True):
        done = subprocess.run(["kubectl", "--kubeconfig", str(self.configs[persona]), "--cache-dir",
                               str(self.tmp / "cache"), *args], input=stdin, capture_output=True, text=True,
                              timeout=60)
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} exited {done.returncode}: {done.stderr}")
        return done

    def start(self, persona: str, *args: str) -> "Streaming":
        """kubectl running in the background (a watch), its output collected line by line."""
        return Streaming(["kubectl", "--kubeconfig", str(self.configs[persona]), "--cache-dir",
                          str(self.tmp / "cache"), *args])

    def file(self, name: str, text: str) -> str:
        path = self.tmp / name
        path.write_text(text)
        return str(path)


class Streaming:
    """A background kubectl whose stdout lines a thread collects (`lines`)."""

    def __init__(self, argv: list[str]):
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(self.process.stdout), daemon=True)
        self.reader.start()

    def finish(self, timeout: float = 30) -> tuple[int, str]:
        """(exit code, stderr) once it ends by itself within `timeout`."""
        code = self.process.wait(timeout=timeout)
        self.reader.join(timeout=5)
        return code, self.process.stderr.read()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        self.process.wait(timeout=10)
        self.reader.join(timeout=5)


@pytest.fixture(scope="module")
def kubectl(tmp_path_factory):
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not on PATH")
    tmp = tmp_path_factory.mktemp("kubectl")
    env = process_env(DATABASE_URL=migrated_sqlite(tmp / "hub.sqlite3"), FLEET_SIMULATED_APPLY_SECONDS="0",
                      FLEET_ENGINE_SOCKET=str(tmp / "engine.sock"))
    manage = [sys.executable, "manage.py"]
    tokens = json.loads(subprocess.run([*manage, "shell", "-c", USERS], cwd=ROOT, env=env, check=True,
                                       capture_output=True, text=True, timeout=120).stdout.strip().splitlines()[-1])
    cert, key = self_signed(tmp)
    port = free_port()
    log = open(tmp / "serve.log", "w")  # noqa: SIM115 (closed after the server)
    server = subprocess.Popen([*manage, "fleet", "serve", f"127.0.0.1:{port}", "--tls-cert", str(cert),
                               "--tls-key", str(key)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        client = Kubectl(tmp, f"https://127.0.0.1:{port}", cert, tokens)
        wait_for(lambda: server.poll() is not None or client("vic", "get", "--raw", "/version", check=False)
                 .returncode == 0, timeout=60, what="fleet serve to answer on https")
        assert server.poll() is None, (tmp / "serve.log").read_text()[-2000:]
        yield client
    finally:
        # SIGTERM, as a supervisor stops it: it stops in a second or two. After
        # SIGINT `fleet serve --tls-cert` was still running 20 s later, so this
        # teardown used to wait its whole 15 s and then kill it.
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def header(out: str) -> list[str]:
    return out.splitlines()[0].split()


def test_the_seed_tutorial_runs_with_stock_kubectl(kubectl):
    """Apply, get with the seed's columns, apply again (unchanged) and after
    an edit (configured), get -o yaml, approve by status patch, delete."""
    members, workload, placement = (str(DEMO_DIR / f) for f in ("01-members.yaml", "02-workload.yaml",
                                                                 "03-placement.yaml"))
    assert "membercluster.cluster.kubernetes-fleet.io/member1 created" in kubectl("ada", "apply", "-f", members).stdout
    assert kubectl("ada", "apply", "-f", workload).stdout == ("namespace/test-namespace created\n"
                                                              "configmap/test-cm created\n")
    kubectl("ada", "apply", "-f", placement)
    crp = kubectl("vic", "get", "crp").stdout
    assert header(crp) == ["NAME", "GEN", "SCHEDULED", "SCHEDULED-GEN", "AVAILABLE", "AVAILABLE-GEN", "AGE"]
    assert crp.splitlines()[1].split()[:4] == ["example-placement", "1", "True", "1"]

    assert kubectl("ada", "apply", "-f", workload).stdout == ("namespace/test-namespace unchanged\n"
                                                              "configmap/test-cm unchanged\n")
    value2 = kubectl.file("workload-v2.yaml", Path(workload).read_text().replace("value1", "value2"))
    assert "configmap/test-cm configured" in kubectl("ada", "apply", "-f", value2).stdout
    snapshots = kubectl("vic", "get", "clusterresourcesnapshots", "--show-labels").stdout.splitlines()
    assert header(snapshots[0]) == ["NAME", "GEN", "AGE", "LABELS"]
    assert "kubernetes-fleet.io/is-latest-snapshot=true" in snapshots[-1]
    assert yaml.safe_load(kubectl("vic", "get", "cm", "test-cm", "-n", "test-namespace", "-o", "yaml").stdout)[
        "data"] == {"key": "value2"}

    kubectl("ada", "apply", "-f", kubectl.file("strategy.yaml", SHORT_SOAK_STRATEGY))
    kubectl("alice", "apply", "-f", kubectl.file("run.yaml", RUN))
    wait_for(lambda: kubectl("vic", "get", "clusterapprovalrequest", GATE, check=False).returncode == 0,
             timeout=60, what="the canary gate's approval request")
    approval = kubectl("vic", "get", "clusterapprovalrequest").stdout
    assert header(approval) == ["NAME", "UPDATE-RUN", "STAGE", "APPROVED", "APPROVALACCEPTED", "AGE"]

    patch = ["patch", "clusterapprovalrequests.placement.kubernetes-fleet.io", GATE, "--subresource=status",
             "--type=merge", "--patch-file", kubectl.file("approve.json", json.dumps(APPROVE))]
    refused = kubectl("vic", *patch, check=False)
    assert refused.returncode == 1 and refused.stderr.startswith("Error from server (Forbidden)")
    # Waiting from before the approval: the run can succeed only after it, so
    # kubectl sees the condition turn by its watch, not by its first read.
    waiting = kubectl.start("vic", "wait", "--for=condition=Succeeded", "clusterstagedupdaterun/example-run",
                            "--timeout=60s")
    try:
        assert kubectl("alice", *patch).stdout == (f"clusterapprovalrequest.placement.kubernetes-fleet.io/{GATE} "
                                                   "patched\n")
        code, errors = waiting.finish(timeout=70)
    finally:
        waiting.stop()
    assert (code, errors, waiting.lines) == (0, "", [
        "clusterstagedupdaterun.placement.kubernetes-fleet.io/example-run condition met\n"])
    run = yaml.safe_load(kubectl("vic", "get", "csur", "example-run", "-o", "yaml").stdout)
    assert run["status"]["policySnapshotIndexUsed"] == "0"

    deleted = kubectl("alice", "delete", "csur", "example-run").stdout
    assert deleted == 'clusterstagedupdaterun.placement.kubernetes-fleet.io "example-run" deleted\n'
    assert "NotFound" in kubectl("vic", "get", "csur", "example-run", check=False).stderr


def test_kubectl_without_a_valid_token_is_asked_to_log_in(kubectl):
    kubectl.configs["nobody"] = kubectl.tmp / "nobody.kubeconfig"
    kubectl.configs["nobody"].write_text(kubectl.configs["vic"].read_text().replace("fleet_", "fleet_x"))
    done = kubectl("nobody", "get", "crp", check=False)
    assert (done.returncode, done.stderr) == (1, "error: You must be logged in to the server (Unauthorized)\n")


def test_the_official_kubernetes_python_client_reads_and_is_refused_like_an_api_server(kubectl):
    from kubernetes import client, config  # the official client: 0.4 s to import, only here

    config.load_kube_config(config_file=str(kubectl.configs["vic"]))
    custom = client.CustomObjectsApi()
    listed = custom.list_cluster_custom_object("cluster.kubernetes-fleet.io", "v1beta1", "memberclusters")
    assert "resourceVersion" in listed["metadata"]
    with pytest.raises(client.ApiException) as refused:
        custom.create_cluster_custom_object("cluster.kubernetes-fleet.io", "v1beta1", "memberclusters", {
            "apiVersion": "cluster.kubernetes-fleet.io/v1beta1", "kind": "MemberCluster",
            "metadata": {"name": "member9"}, "spec": {"identity": {"kind": "User", "name": "m9"}}})
    assert refused.value.status == 403 and json.loads(refused.value.body)["reason"] == "Forbidden"
    with pytest.raises(client.ApiException) as missing:
        client.CoreV1Api().read_namespace("nope")
    assert missing.value.status == 404


DEPLOYMENT = """\
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: app
        image: nginx:1
        env: [{name: A, value: "1"}, {name: B, value: "2"}]
      - name: sidecar
        image: busybox:1
"""


def test_kubectl_apply_edits_and_sets_images_of_a_deployment_by_strategic_merge(kubectl):
    first = kubectl.file("shop.yaml", DEPLOYMENT)
    assert kubectl("ada", "apply", "-f", first).stdout == "namespace/shop created\ndeployment.apps/web created\n"
    edited = kubectl.file("shop-v2.yaml", DEPLOYMENT.replace("nginx:1", "nginx:2").replace(', {name: B, value: "2"}', ""))
    assert kubectl("ada", "apply", "-f", edited).stdout == "namespace/shop unchanged\ndeployment.apps/web configured\n"
    kubectl("ada", "set", "image", "deployment/web", "-n", "shop", "sidecar=busybox:2")
    containers = json.loads(kubectl("vic", "get", "deploy", "web", "-n", "shop", "-o",
                                    "jsonpath={.spec.template.spec.containers}").stdout)
    assert [(c["name"], c["image"], c.get("env")) for c in containers] == [
        ("app", "nginx:2", [{"name": "A", "value": "1"}]), ("sidecar", "busybox:2", None)]


def test_kubectl_get_w_prints_a_change_of_a_placement_as_a_new_row(kubectl):
    """`kubectl get crp -w`: the table, then the placement again when its
    spec changes (GEN 2), as a row of the same table (no second header)."""
    kubectl("ada", "apply", "-f", str(DEMO_DIR / "03-placement.yaml"))
    watching = kubectl.start("vic", "get", "crp", "-w")
    try:
        wait_for(lambda: len(watching.lines) >= 2 or watching.process.poll() is not None, timeout=30,
                 what="kubectl get -w to print the table")
        assert header(watching.lines[0]) == ["NAME", "GEN", "SCHEDULED", "SCHEDULED-GEN", "AVAILABLE",
                                             "AVAILABLE-GEN", "AGE"]
        assert watching.lines[1].split()[:2] == ["example-placement", "1"]
        kubectl("ada", "patch", "crp", "example-placement", "--type=merge", "-p", '{"spec":{"revisionHistoryLimit":5}}')
        wait_for(lambda: any(line.split()[:2] == ["example-placement", "2"] for line in watching.lines[2:]),
                 timeout=30, what=f"a new row with GEN 2, got {watching.lines}")
    finally:
        watching.stop()
    assert [line for line in watching.lines if line.startswith("NAME")] == watching.lines[:1]
