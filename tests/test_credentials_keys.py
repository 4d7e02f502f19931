"""Fail closed: DEBUG is off unless asked for, and then stored kubeconfigs
need a FLEET_CREDENTIALS_KEY of their own; keys rotate with MultiFernet and
`fleet credentials rotate` (docs/security.md, "Rotating the credentials key").

Personas: "ada" administers Fleet UI; "prod-hub" and "member1-kubeconfig"
are the stored credentials.
"""

import os
import subprocess
import sys

import pytest

from rollouts import models as m
from rollouts.mirror.actions import credential_save
from rollouts.models.connections import HubConnection, MemberCredential, UnreadableCredential

from .real_services import ROOT

OLD = "old-credentials-key-" + "o" * 32
NEW = "new-credentials-key-" + "n" * 32
SECRET = "a-secret-key-for-these-settings-" + "s" * 20


# Settings, read in a fresh interpreter (they are read once) ------------------------------------------------


def start_with(**env: str) -> subprocess.CompletedProcess:
    """Load the settings with only `env` among DEBUG, SECRET_KEY and FLEET_CREDENTIALS_KEY."""
    keep = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "SECRET_KEY", "FLEET_CREDENTIALS_KEY")}
    code = "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)"
    return subprocess.run([sys.executable, "-c", code], env={**keep, "DJANGO_SETTINGS_MODULE": "fleetui.settings",
                                                             **env},
                          cwd=ROOT, capture_output=True, text=True, timeout=60)


def refusal(done: subprocess.CompletedProcess) -> str:
    assert done.returncode != 0
    return done.stderr.strip().splitlines()[-1]


def test_debug_is_off_unless_asked_for_so_a_bare_start_needs_a_secret_key():
    assert refusal(start_with()) == ("django.core.exceptions.ImproperlyConfigured: SECRET_KEY must be set when "
                                     "DEBUG is false (DEBUG=true is for development only)")


def test_without_debug_a_separate_credentials_key_is_required_and_the_message_says_how_to_make_one():
    message = refusal(start_with(SECRET_KEY=SECRET))

    assert "FLEET_CREDENTIALS_KEY must be set when DEBUG is false (a key of its own, not SECRET_KEY)" in message
    assert "Fernet.generate_key()" in message


@pytest.mark.parametrize(("keys", "words"), [
    pytest.param(SECRET, "FLEET_CREDENTIALS_KEY's first key must differ from SECRET_KEY", id="the-secret-key"),
    pytest.param(f"{NEW},short", "every FLEET_CREDENTIALS_KEY key must be at least 32 characters", id="short-key"),
])
def test_without_debug_a_weak_credentials_key_is_refused(keys, words):
    assert words in refusal(start_with(SECRET_KEY=SECRET, FLEET_CREDENTIALS_KEY=keys))


def test_production_starts_with_both_keys_and_the_old_secret_key_may_follow_to_read_old_rows():
    done = start_with(SECRET_KEY=SECRET, FLEET_CREDENTIALS_KEY=f"{NEW},{SECRET}")

    assert done.returncode == 0 and done.stdout.strip() == "False", done.stderr


def test_make_run_starts_with_debug_and_no_keys():
    done = start_with(DEBUG="true")

    assert done.returncode == 0 and done.stdout.strip() == "True", done.stderr


# Rotation ---------------------------------------------------------------------------------------------------


@pytest.fixture
def stored(db, fake, settings):
    """A hub connection and a member credential encrypted with OLD."""
    settings.FLEET_CREDENTIALS_KEY = OLD
    hub = credential_save(HubConnection(name="prod-hub"), kubeconfig=fake.kubeconfig(), actor="ada")
    member = credential_save(MemberCredential(name="member1-kubeconfig"), kubeconfig=fake.kubeconfig(), actor="ada")
    return hub, member


def ciphertexts() -> list[str]:
    return [*HubConnection.objects.values_list("kubeconfig_encrypted", flat=True),
            *MemberCredential.objects.values_list("kubeconfig_encrypted", flat=True)]


def test_a_new_key_put_first_still_reads_rows_the_old_key_encrypted(stored, fake, settings):
    settings.FLEET_CREDENTIALS_KEY = f"{NEW},{OLD}"

    assert [c.kubeconfig() for c in stored] == [fake.kubeconfig(), fake.kubeconfig()]


def test_rotate_reencrypts_every_credential_with_the_first_key_and_the_old_key_can_then_go(stored, fake, settings,
                                                                                           fleet):
    before = ciphertexts()
    settings.FLEET_CREDENTIALS_KEY = f"{NEW}, {OLD}"

    result = fleet("--as", "ada", "credentials", "rotate")

    assert result == (0, "HubConnection/prod-hub re-encrypted\nMemberCredential/member1-kubeconfig re-encrypted\n",
                      "")
    assert not set(ciphertexts()) & set(before)
    settings.FLEET_CREDENTIALS_KEY = NEW
    assert [type(c).objects.get().kubeconfig() for c in stored] == [fake.kubeconfig(), fake.kubeconfig()]
    settings.FLEET_CREDENTIALS_KEY = OLD
    with pytest.raises(UnreadableCredential):
        HubConnection.objects.get().kubeconfig()
    events = m.Event.objects.filter(action="configured").values_list("actor", "object_kind", "object_name", "details")
    assert list(events) == [
        ("ada", "HubConnection", "prod-hub", {"kubeconfig": "re-encrypted with the first FLEET_CREDENTIALS_KEY"}),
        ("ada", "MemberCredential", "member1-kubeconfig",
         {"kubeconfig": "re-encrypted with the first FLEET_CREDENTIALS_KEY"}),
    ]


def test_rotate_names_a_kubeconfig_no_key_reads_and_leaves_it_as_it_is(stored, settings, fleet):
    before = HubConnection.objects.get().kubeconfig_encrypted
    settings.FLEET_CREDENTIALS_KEY = NEW  # OLD forgotten before rotating

    code, out, err = fleet("--as", "ada", "credentials", "rotate")

    assert (code, out) == (1, "")
    assert err == ("HubConnection/prod-hub: no FLEET_CREDENTIALS_KEY decrypts it; enter its kubeconfig again\n"
                   "MemberCredential/member1-kubeconfig: no FLEET_CREDENTIALS_KEY decrypts it; enter its kubeconfig "
                   "again\n")
    assert HubConnection.objects.get().kubeconfig_encrypted == before
    assert not m.Event.objects.filter(action="configured").exists()


def test_rows_of_the_demo_key_move_to_a_separate_key_by_listing_the_secret_key_second(db, fake, settings, fleet):
    settings.FLEET_CREDENTIALS_KEY = ""  # DEBUG's demo: derived from SECRET_KEY
    hub = credential_save(HubConnection(name="prod-hub"), kubeconfig=fake.kubeconfig(), actor="ada")
    settings.FLEET_CREDENTIALS_KEY = f"{NEW},{settings.SECRET_KEY}"

    assert fleet("credentials", "rotate").code == 0
    settings.FLEET_CREDENTIALS_KEY = NEW
    hub.refresh_from_db()
    assert hub.kubeconfig() == fake.kubeconfig()


def test_rotate_with_nothing_stored_says_so(db, fleet):
    assert fleet("credentials", "rotate") == (0, "No stored kubeconfigs.\n", "")
