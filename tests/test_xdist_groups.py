"""`make test`'s scheduling (tests/xdist_groups.py), on a small suite of its
own run by pytest-xdist the way the Makefile runs ours: every test marked
slow, celery or browser runs on one worker, one after another."""

import os
import re
import subprocess
import sys

import pytest

from .real_services import ROOT

pytestmark = pytest.mark.slow  # starts a pytest with two workers

CONFTEST = """
from tests.xdist_groups import (  # noqa: F401
    pytest_collection_modifyitems, pytest_configure, pytest_configure_node, pytest_unconfigure,
    pytest_xdist_make_scheduler)
"""
# Each marked test takes a moment, so that without the group the idle
# worker would be handed some of them.
MODULE = """
import time
import pytest

@pytest.mark.{marker}
@pytest.mark.parametrize("i", range(3))
def test_marked(i):
    time.sleep(0.2)

@pytest.mark.parametrize("i", range(10))
def test_in_process(i):
    time.sleep(0.05)
"""


SOAK_MODULE = "import pytest\n\n@pytest.mark.soak\n@pytest.mark.slow\ndef test_waits():\n    pass\n"


def pytest_in(folder, *args: str, timeout: float = 60) -> str:
    """pytest's stdout for the small suite in `folder` (asserted to pass)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:django", "-p", "no:cacheprovider", *args,
                           str(folder)], cwd=folder, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    return done.stdout


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    """A small suite with tests marked slow, celery and browser, tests that
    are not, and a test marked soak and slow; run once as `make test` runs
    ours (both tests below read that one run: it starts three pytests)."""
    folder = tmp_path_factory.mktemp("suite")
    (folder / "conftest.py").write_text(CONFTEST)
    for marker in ("slow", "celery", "browser"):
        (folder / f"test_{marker}.py").write_text(MODULE.format(marker=marker))
    (folder / "test_z.py").write_text(SOAK_MODULE)
    return folder, run_like_make_test(folder)


def run_like_make_test(folder) -> dict[str, str]:
    """{test id: the worker that ran it}."""
    out = pytest_in(folder, "-n", "2", "--dist", "loadgroup", "-vv", timeout=120)
    return {test: worker for worker, test in re.findall(r"\[(gw\d)\] \[\s*\d+%\] PASSED (\S+)", out)}


def test_tests_marked_slow_celery_or_browser_run_on_one_worker_while_the_rest_share_both(suite):
    _, workers = suite

    assert len(workers) == 40
    marked = {worker for test, worker in workers.items() if "test_marked" in test}
    assert len(marked) == 1, f"marked tests ran on {sorted(marked)}"
    assert set(workers.values()) == {"gw0", "gw1"}, "the other worker took the in-process tests"


def test_soak_tests_come_first_and_outside_the_serial_group(suite):
    folder, workers = suite

    ids = [line for line in pytest_in(folder, "--collect-only", "-q").splitlines() if "::" in line]
    assert ids[0].endswith("test_z.py::test_waits"), ids[:3]
    assert len(ids) == 40
    assert "test_z.py::test_waits" in workers, "the soak test did not run"
    serial = pytest_in(folder, "--collect-only", "-q", "-m", "xdist_group")
    in_group = [line for line in serial.splitlines() if "::" in line]
    assert len(in_group) == 9 and not any("test_waits" in t for t in in_group), "a soak test marked slow is not serial"
