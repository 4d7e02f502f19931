"""Shared fixtures: run the `fleet` command like a shell would, write
manifests to files, and freeze the hub's clock so AGE columns are exact.
Also the Hypothesis profiles, and (tests/xdist_groups.py) the xdist group
that runs the tests which start processes one after another."""

import io
import os
import queue
from datetime import UTC, datetime
from typing import NamedTuple

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from rollouts import clock, fragment_memory, notifier
from tests.xdist_groups import (  # noqa: F401 (hooks: pytest finds them here)
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_configure_node,
    pytest_unconfigure,
    pytest_xdist_make_scheduler,
)

# Where the environment says not to write bytecode (PYTHONDONTWRITEBYTECODE:
# set on this machine), every process a test starts (manage.py,
# Celery, Daphne: hundreds a run) compiles our modules from source again,
# about a third of a `fleet` command's CPU. Without it the first process
# writes them (__pycache__ is git-ignored) and the rest load them.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

# 21:27:00 on the day of the tutorial's run (its staging stage starts 21:28:08).
TUTORIAL_START = datetime(2026, 3, 2, 21, 27, 0, tzinfo=UTC)


# The fuzzers try 150 examples each in CI (CI is set) and 25 at a desk, where
# a quick loop matters more; HYPOTHESIS_PROFILE=ci runs the full count here.
hypothesis_settings.register_profile(
    "ci", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True)
hypothesis_settings.register_profile(
    "dev", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))


class FleetResult(NamedTuple):
    """What a shell sees: exit code, stdout and stderr (compares as a tuple)."""

    code: int
    out: str
    err: str


@pytest.fixture
def fleet():
    """`fleet("get", "crp")` runs `manage.py fleet get crp` in-process and
    returns (exit_code, stdout, stderr); `stdin=` feeds `-f -`."""

    def run(*args: str, stdin: str = "") -> FleetResult:
        out, err = io.StringIO(), io.StringIO()
        try:
            call_command("fleet", *args, stdout=out, stderr=err, stdin=io.StringIO(stdin))
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        except CommandError as exc:
            # call_command turns argparse's usage errors into CommandError; a
            # shell would have seen argparse print them and exit 2.
            err.write(f"{exc}\n")
            code = 2
        return FleetResult(code, out.getvalue(), err.getvalue())

    return run


@pytest.fixture
def manifest_file(tmp_path):
    """`manifest_file(yaml_text, "crp.yaml")` writes the text and returns its path."""

    def write(text: str, name: str = "manifest.yaml") -> str:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return str(path)

    return write


@pytest.fixture
def frozen_clock():
    """The hub clock frozen at TUTORIAL_START; move it with `.advance(seconds)`."""
    with clock.frozen(TUTORIAL_START):
        yield clock


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Logins in tests need no real key stretching."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _no_pushes_remembered():
    """Each test's first push to a run page is a whole timeline: what an
    earlier test pushed (a run of the same name and pk) is forgotten."""
    memory = fragment_memory.memory()
    if isinstance(memory, fragment_memory.ProcessMemory):
        memory.clear()


class IdleHandOff:
    """Stands in for Celery mode's notification hand-off thread of this
    process (rollouts.notifier): it keeps what commits queue and takes
    nothing; a test of the hand-off takes its queue itself."""

    def __init__(self):
        self.pending, self.pid = queue.SimpleQueue(), os.getpid()

    def is_alive(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _notifications_hand_off_idle(monkeypatch):
    """No hand-off thread in the test process: one that a Celery-mode test
    fed outlived it and touched the database during a later test, which
    pytest-django refuses (a warning in CI). The hand-off is tested by taking
    its queue (test_notifications.py), the delivery by real workers
    (test_notifications_celery.py)."""
    monkeypatch.setattr(notifier, "_hand_off_thread", IdleHandOff())


@pytest.fixture(scope="session")
def _empty_static_root(tmp_path_factory):
    return tmp_path_factory.mktemp("static")


@pytest.fixture(autouse=True)
def _static_files_without_collectstatic(settings, _empty_static_root):
    """Pages render without running `collectstatic` first: plain static
    storage, files found in static/. Production's manifest storage is tested
    in test_static_files.py."""
    settings.STORAGES = {**settings.STORAGES,
                         "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
    settings.STATIC_ROOT = _empty_static_root
    settings.WHITENOISE_USE_FINDERS = True


@pytest.fixture
def fake():
    """A fake Kubernetes API server on loopback (tests/fake_kube.py) that the
    official client talks to over HTTP: a KubeFleet hub or a member cluster."""
    from tests.fake_kube import FakeKube

    with FakeKube() as server:
        yield server


@pytest.fixture
def hub(db, fake):
    """The hub connection "prod-hub" to `fake`, its kubeconfig stored as an admin would."""
    from rollouts.mirror.actions import credential_save
    from rollouts.models.connections import HubConnection

    return credential_save(HubConnection(name="prod-hub"), kubeconfig=fake.kubeconfig(), context="fake",
                           actor="ada")
