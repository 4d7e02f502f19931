"""The kubeconfig a person downloads to point kubectl at this hub.

The server URL is FLEET_API_URL, else FLEET_BASE_URL, else the address the
request came in on. kubectl sends a bearer token only over HTTPS, so the URL
must be https (a TLS-terminating proxy, or `fleet serve --tls-cert/--tls-key`).
With FLEET_API_CA_FILE (the self-signed certificate of the embedded mode) the
certificate is embedded and verified; `insecure-skip-tls-verify` is written
only when FLEET_API_INSECURE_SKIP_TLS_VERIFY is set (docs/kube-api.md)."""

import base64
from pathlib import Path

import yaml
from django.conf import settings

CONTEXT = "fleet-ui"


def server_url(request=None) -> str:
    """Where kubectl should connect."""
    configured = getattr(settings, "FLEET_API_URL", "") or ""
    if configured:
        return configured.rstrip("/")
    if request is not None:
        return f"https://{request.get_host()}"
    return settings.FLEET_BASE_URL.rstrip("/")


def kubeconfig_text(*, username: str, token: str, server: str) -> str:
    """A complete kubeconfig (YAML) for `username` with `token`."""
    cluster = {"server": server}
    ca_file = getattr(settings, "FLEET_API_CA_FILE", "") or ""
    if ca_file:
        cluster["certificate-authority-data"] = base64.b64encode(Path(ca_file).read_bytes()).decode()
    if getattr(settings, "FLEET_API_INSECURE_SKIP_TLS_VERIFY", False):
        cluster["insecure-skip-tls-verify"] = True
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": CONTEXT,
        "clusters": [{"name": CONTEXT, "cluster": cluster}],
        "users": [{"name": f"{username}@{CONTEXT}", "user": {"token": token}}],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": f"{username}@{CONTEXT}"}}],
    }
    return yaml.safe_dump(config, sort_keys=False)
