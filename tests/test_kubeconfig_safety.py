"""Kubeconfigs run no program and read no file on the Fleet UI server, and
their secrets stay out of logs and pages (issue 13, findings 1, 2 and 8).

Every way in is tried: the admin form (through the Django test client), the
`fleet` command, the save service, and a row stored before the allowlist
existed, which must fail at load time. A credential plugin that would run
writes a marker file: the tests assert it never appears.

Personas: "ada" administers Fleet UI; the hub "prod-hub" is `fake`.
"""

import logging
import stat

import pytest
import yaml
from django.contrib.auth.models import User

from rollouts import clock, k8s
from rollouts import models as m
from rollouts.kubeconfig import KubeconfigRefused, kubeconfig_parse
from rollouts.members import KUBECONFIG_ANNOTATION
from rollouts.members.kubernetes import KubernetesMember
from rollouts.mirror import HubRefused, hub_sync
from rollouts.mirror.actions import credential_save
from rollouts.models.connections import HubConnection, MemberCredential

PLUGIN_REFUSED = "users[0].user.auth-provider: not allowed: credential plugins run programs on the Fleet UI server"
ADMIN_TOKEN = "s3cret-admin-token"


@pytest.fixture
def ada(db):
    return User.objects.create_superuser("ada", "ada@example.com", "pw")


@pytest.fixture
def marker(tmp_path):
    """(path of a program that creates the marker file, the marker's path)."""
    made = tmp_path / "the-plugin-ran"
    program = tmp_path / "fake-gcloud"
    program.write_text(f"#!/bin/sh\ntouch {made}\n"
                       'echo \'{"credential": {"access_token": "x", "token_expiry": "2099-01-01T00:00:00Z"}}\'\n')
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    return program, made


def kubeconfig(server: str, user: dict, cluster_extra: dict | None = None, *, second_user: dict | None = None) -> str:
    users = [{"name": "u", "user": user}] + ([{"name": "admin", "user": second_user}] if second_user else [])
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": server, **(cluster_extra or {})}}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
        "users": users,
    })


def gcp_plugin(program) -> dict:
    return {"auth-provider": {"name": "gcp", "config": {"cmd-path": str(program), "cmd-args": "config-helper",
                                                       "token-key": "{.credential.access_token}",
                                                       "expiry-key": "{.credential.token_expiry}"}}}


def stored_before_the_allowlist(model, name: str, text: str):
    """A credential row as the old check let it in: encrypted, never checked here."""
    credential = model(name=name)
    credential.set_kubeconfig(text)
    credential.save()
    return credential


# Finding 1: credential plugins -----------------------------------------------------------------------------


@pytest.mark.parametrize("page", ["hubconnection", "membercredential"])
def test_the_admin_form_refuses_an_auth_provider_without_running_it_or_showing_the_kubeconfig(
        ada, client, marker, page):
    program, made = marker
    client.force_login(ada)
    text = kubeconfig("https://hub.example.com", gcp_plugin(program), second_user={"token": ADMIN_TOKEN})

    response = client.post(f"/admin/rollouts/{page}/add/", {"name": "prod", "kubeconfig": text, "enabled": "on"})

    page_html = response.content.decode()
    assert response.status_code == 200 and PLUGIN_REFUSED in page_html
    assert ADMIN_TOKEN not in page_html and str(program) not in page_html
    assert not made.exists()
    assert not HubConnection.objects.exists() and not MemberCredential.objects.exists()


def test_fleet_kubeconfig_add_refuses_an_auth_provider_without_running_it(db, fleet, manifest_file, marker):
    program, made = marker
    path = manifest_file(kubeconfig("https://member.example.com", gcp_plugin(program)), "member1.kubeconfig")

    code, out, err = fleet("kubeconfig", "add", "member1-kubeconfig", "--kubeconfig", path)

    assert (code, out, err) == (1, "", f"error: kubeconfig member1-kubeconfig: {PLUGIN_REFUSED}\n")
    assert not made.exists() and not MemberCredential.objects.exists()


def test_a_hub_stored_with_an_auth_provider_before_the_allowlist_fails_its_sync_without_running_it(db, marker):
    program, made = marker
    hub = stored_before_the_allowlist(HubConnection, "prod-hub", kubeconfig("https://hub.example.com",
                                                                             gcp_plugin(program)))

    result = hub_sync(connection_id=hub.pk, seconds=0.2)

    assert result.outcome == "failed" and result.error == PLUGIN_REFUSED
    assert HubConnection.objects.get().last_error == PLUGIN_REFUSED
    assert not made.exists()


def test_a_member_stored_with_an_exec_plugin_before_the_allowlist_fails_its_apply_without_running_it(db, tmp_path):
    made = tmp_path / "the-plugin-ran"
    plugin = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "/bin/touch", "args": [str(made)]}}
    stored_before_the_allowlist(MemberCredential, "member1-kubeconfig", kubeconfig("https://m.example.com", plugin))
    member = m.MemberCluster.objects.create(name="member1", creation_timestamp=clock.now(),
                                            annotations={KUBECONFIG_ANNOTATION: "member1-kubeconfig"})

    failure = KubernetesMember().apply(member, placement="p", snapshot="p-0-snapshot", manifests=[])

    assert failure == ("member member1: users[0].user.exec: not allowed: credential plugins run programs on "
                       "the Fleet UI server")
    assert not made.exists()


# Finding 2: file paths -------------------------------------------------------------------------------------


FILE_FIELDS = [
    pytest.param("user", "tokenFile", "users[0].user.tokenFile", "token", id="user-tokenFile"),
    pytest.param("user", "client-certificate", "users[0].user.client-certificate", "client-certificate-data",
                 id="user-client-certificate"),
    pytest.param("user", "client-key", "users[0].user.client-key", "client-key-data", id="user-client-key"),
    pytest.param("cluster", "certificate-authority", "clusters[0].cluster.certificate-authority",
                 "certificate-authority-data", id="cluster-certificate-authority"),
]


def with_path(server: str, section: str, field: str, path: str) -> str:
    if section == "user":
        return kubeconfig(server, {field: path})
    return kubeconfig(server, {"token": "t"}, {field: path})


@pytest.mark.parametrize(("section", "field", "where", "instead"), FILE_FIELDS)
def test_saving_refuses_every_file_path_field_and_names_it(db, tmp_path, section, field, where, instead):
    text = with_path("https://hub.example.com", section, field, str(tmp_path / "server-secret"))

    with pytest.raises(HubRefused) as refused:
        credential_save(HubConnection(name="prod-hub"), kubeconfig=text, actor="ada")

    assert str(refused.value) == (f"{where}: not allowed: Fleet UI reads no files on its server; "
                                  f"embed the contents as {instead}")
    assert not HubConnection.objects.exists()


@pytest.mark.parametrize(("section", "field", "where", "instead"), FILE_FIELDS)
def test_a_stored_file_path_is_refused_at_load_time_before_any_file_is_read(tmp_path, section, field, where, instead):
    with pytest.raises(KubeconfigRefused) as refused:
        k8s.client_from_kubeconfig(with_path("https://hub.example.com", section, field, "/etc/hostname"))

    assert str(refused.value).startswith(f"{where}: not allowed")


def test_a_hub_stored_with_a_token_file_never_sends_the_file(db, fake, tmp_path):
    secret = tmp_path / "server-secret"
    secret.write_text("contents-of-a-server-file")
    hub = stored_before_the_allowlist(HubConnection, "prod-hub", kubeconfig(fake.url, {"tokenFile": str(secret)}))

    result = hub_sync(connection_id=hub.pk, seconds=0.2)

    assert result.outcome == "failed" and result.error.startswith("users[0].user.tokenFile: not allowed")
    assert fake.requests == []


# Finding 8: secrets in logs and pages ----------------------------------------------------------------------


def test_a_token_with_a_trailing_newline_is_stripped_and_retries_log_no_token(db, fake, caplog):
    # A token pasted from a file keeps the file's last newline.
    hub = stored_before_the_allowlist(HubConnection, "prod-hub", kubeconfig(fake.url, {"token": f"{fake.token}\n"}))
    assert kubeconfig_parse(hub.kubeconfig())["users"][0]["user"]["token"] == fake.token
    fake.go_down()

    failed = []
    with caplog.at_level(logging.DEBUG):
        for _ in range(2):
            failed.append(hub_sync(connection_id=hub.pk, seconds=0.2))
            HubConnection.objects.update(backoff_until=None)  # retry now rather than after the backoff

    assert [r.outcome for r in failed] == ["failed", "failed"] and "cannot reach the API server" in failed[0].error
    assert fake.token not in caplog.text and "sync failed" in caplog.text
    fake.come_back()
    HubConnection.objects.update(backoff_until=None)
    assert hub_sync(connection_id=hub.pk, seconds=0.2).outcome == "synced"


@pytest.mark.parametrize("token", [
    pytest.param("abc\ndef", id="inner-newline"),
    pytest.param("abc\x1b[31mdef", id="ansi-escape"),
    pytest.param("abc def", id="inner-space"),
    pytest.param("  ", id="blank"),
])
def test_a_token_that_cannot_go_into_a_header_is_refused_without_quoting_it(db, token):
    text = kubeconfig("https://hub.example.com", {"token": token})

    with pytest.raises(HubRefused) as refused:
        credential_save(MemberCredential(name="m1"), kubeconfig=text, actor="ada")

    assert str(refused.value).startswith("users[0].user.token: must be")
    assert "abc" not in str(refused.value)


def test_a_server_that_echoes_the_authorization_header_does_not_get_it_into_errors(db, fake, hub, caplog):
    fake.fail(500, message=f"rejected Authorization: Bearer {fake.token} (and basic%20{fake.token})")

    result = hub_sync(connection_id=hub.pk, seconds=0.2)

    assert result.outcome == "failed" and "Bearer [redacted]" in result.error
    assert fake.token not in result.error and fake.token not in HubConnection.objects.get().last_error
    assert fake.token not in caplog.text


def test_a_header_the_http_library_refuses_is_a_permanent_error_that_quotes_no_token(fake):
    client = k8s.client_from_kubeconfig(fake.kubeconfig())
    # Past the allowlist only by hand: what a client holding a bad token would send.
    client.configuration.api_key["BearerToken"] = f"Bearer {fake.token}\nX-Injected: 1"
    client.configuration.refresh_api_key_hook = None  # the loader's hook would set the stored token back

    with pytest.raises(k8s.PermanentK8sError) as refused:
        k8s.get_object(client, "", "v1", "configmaps", "c", "default")

    assert "the request could not be sent" in str(refused.value) and "Bearer [redacted]" in str(refused.value)
    assert fake.token not in str(refused.value) and fake.requests == []


def test_the_admin_form_shown_again_with_an_error_is_empty_of_the_submitted_kubeconfig(ada, client, fake):
    client.force_login(ada)

    response = client.post("/admin/rollouts/hubconnection/add/", {
        "name": "prod-hub", "context": "no-such-context", "kubeconfig": fake.kubeconfig(), "enabled": "on"})

    page = response.content.decode()
    assert response.status_code == 200 and 'it has no context "no-such-context"' in page.replace("&quot;", '"')
    assert fake.token not in page and fake.url not in page


# The allowlist itself --------------------------------------------------------------------------------------


def test_a_kubeconfig_with_every_allowed_field_is_accepted_as_parsed():
    text = yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c", "preferences": {},
        "clusters": [{"name": "k", "cluster": {
            "server": "https://hub.example.com", "certificate-authority-data": "Q0EK", "tls-server-name": "hub",
            "insecure-skip-tls-verify": False, "proxy-url": "http://proxy:3128", "extensions": [{"name": "x"}]}}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u", "namespace": "fleet-system"}}],
        "users": [{"name": "u", "user": {"token": " t0ken ", "client-certificate-data": "Q0VSVAo=",
                                          "client-key-data": "S0VZCg=="}}],
    })

    parsed = kubeconfig_parse(text)

    assert parsed["users"][0]["user"]["token"] == "t0ken"
    assert parsed["clusters"][0]["cluster"]["server"] == "https://hub.example.com"


@pytest.mark.parametrize(("user", "cluster", "message"), [
    pytest.param({"username": "a", "password": "b"}, {},
                 "users[0].user.username: not allowed (allowed here: client-certificate-data, client-key-data, "
                 "token); users[0].user.password: not allowed (allowed here: client-certificate-data, "
                 "client-key-data, token)", id="basic-auth"),
    pytest.param({"token": "t", "as": "system:admin"}, {}, "users[0].user.as: not allowed", id="impersonation"),
    pytest.param({"token": "t"}, {"server": "file:///etc/passwd"},
                 "clusters[0].cluster.server: must be an https:// (or http://) URL", id="file-url"),
    pytest.param({"token": "t"}, {"certificate-authority-data": "not base64!"},
                 "clusters[0].cluster.certificate-authority-data: must be base64", id="bad-ca-data"),
    pytest.param({"token": "t"}, {"insecure-skip-tls-verify": "yes"},
                 "clusters[0].cluster.insecure-skip-tls-verify: must be true or false", id="insecure-not-bool"),
    pytest.param({"exec": {"command": "x"}, "auth-provider": {"name": "oidc"}}, {},
                 "users[0].user.exec: not allowed: credential plugins run programs on the Fleet UI server; "
                 "users[0].user.auth-provider: not allowed", id="both-plugins"),
])
def test_the_allowlist_names_every_refused_field(user, cluster, message):
    text = yaml.safe_dump({
        "current-context": "c", "clusters": [{"name": "k", "cluster": {"server": "https://h", **cluster}}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}], "users": [{"name": "u", "user": user}],
    }, sort_keys=False)

    with pytest.raises(KubeconfigRefused) as refused:
        kubeconfig_parse(text)

    assert str(refused.value).startswith(message)
