"""API tokens for kubectl: the dashboard's page and `fleet tokens` make,
show once, download and revoke them through the same services, audited
(docs/kube-api.md). Personas: ada (admin), vic (viewer)."""

import stat

import pytest
import yaml

from rollouts import models as m
from rollouts.roles import ADMINS, VIEWERS, user_create
from rollouts.services.tokens import token_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def vic(client):
    user, _ = user_create(username="vic", role=VIEWERS)
    client.force_login(user)
    return user


def test_a_viewer_makes_a_token_shown_once_on_the_page(client, vic):
    response = client.post("/settings/tokens/", {"name": "laptop"})
    assert response.status_code == 201
    secret = response.context["secret"]
    assert secret in response.content.decode()
    assert token_user(secret) == vic
    assert secret not in client.get("/settings/tokens/").content.decode()
    assert m.Event.objects.get(object_kind="ApiToken", action="created").details["via"] == "web"


def test_the_page_downloads_a_kubeconfig_with_the_token(client, vic, settings):
    settings.FLEET_API_URL = "https://hub.example:8443"
    response = client.post("/settings/tokens/", {"name": "laptop", "download": "1"})
    assert response["Content-Disposition"] == 'attachment; filename="fleet-ui-laptop.kubeconfig"'
    config = yaml.safe_load(response.content)
    assert config["clusters"][0]["cluster"] == {"server": "https://hub.example:8443"}
    assert token_user(config["users"][0]["user"]["token"]) == vic


def test_insecure_skip_tls_verify_is_written_only_when_configured(client, vic, settings):
    settings.FLEET_API_INSECURE_SKIP_TLS_VERIFY = True
    response = client.post("/settings/tokens/", {"name": "laptop", "download": "1"})
    assert yaml.safe_load(response.content)["clusters"][0]["cluster"]["insecure-skip-tls-verify"] is True


def test_a_name_used_twice_is_refused_naming_the_field(client, vic):
    client.post("/settings/tokens/", {"name": "laptop"})
    response = client.post("/settings/tokens/", {"name": "laptop"})
    assert response.status_code == 400
    assert response.context["error"] == 'name: vic already has a token called "laptop"'


def test_revoking_on_the_page_ends_the_token(client, vic):
    secret = client.post("/settings/tokens/", {"name": "laptop"}).context["secret"]
    token = m.ApiToken.objects.get(name="laptop")
    client.post(f"/settings/tokens/{token.pk}/revoke/")
    assert token_user(secret) is None


def test_nobody_revokes_another_persons_token(client, vic):
    ada, _ = user_create(username="ada", role=ADMINS)
    client.force_login(ada)
    client.post("/settings/tokens/", {"name": "ci"})
    client.force_login(vic)
    assert client.post(f"/settings/tokens/{m.ApiToken.objects.get(name='ci').pk}/revoke/").status_code == 404


def test_fleet_tokens_creates_lists_and_revokes(fleet, tmp_path):
    user_create(username="vic", role=VIEWERS)
    path = tmp_path / "vic.kubeconfig"
    made = fleet("tokens", "create", "laptop", "--user", "vic", "--kubeconfig", str(path),
                 "--server", "https://hub.example")
    assert made.out == f"token laptop created for vic: kubeconfig written to {path}\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    secret = yaml.safe_load(path.read_text())["users"][0]["user"]["token"]
    assert token_user(secret).username == "vic"
    assert fleet("tokens", "list", "--user", "vic").out.splitlines()[0].split() == [
        "NAME", "PREFIX", "CREATED", "LAST-USED", "REVOKED"]
    assert fleet("tokens", "revoke", "laptop", "--user", "vic").out == "token laptop revoked\n"
    assert token_user(secret) is None
    assert fleet("tokens", "revoke", "nope", "--user", "vic").err == 'Error from server (NotFound): tokens "nope" not found\n'


def test_fleet_serve_refuses_half_a_tls_configuration_before_starting(fleet, tmp_path):
    assert fleet("serve", "--tls-cert", str(tmp_path / "cert.pem")).err == "error: give both --tls-cert and --tls-key\n"
    missing = fleet("serve", "--tls-cert", str(tmp_path / "c.pem"), "--tls-key", str(tmp_path / "k.pem"))
    assert missing.err == f"error: cannot read {tmp_path / 'c.pem'}: no such file\n"
