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


def run_like_make_test(folder) -> dict[str, str]:
    """{test id: the worker that ran it}."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:django", "-p", "no:cacheprovider", "-n", "2",
         "--dist", "loadgroup", "-vv", str(folder)], cwd=folder, env=env, capture_output=True, text=True,
        timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    return {test: worker for worker, test in re.findall(r"\[(gw\d)\] \[\s*\d+%\] PASSED (\S+)", done.stdout)}


def test_tests_marked_slow_celery_or_browser_run_on_one_worker_while_the_rest_share_both(tmp_path):
    (tmp_path / "conftest.py").write_text(CONFTEST)
    for marker in ("slow", "celery", "browser"):
        (tmp_path / f"test_{marker}.py").write_text(MODULE.format(marker=marker))

    workers = run_like_make_test(tmp_path)

    assert len(workers) == 39
    marked = {worker for test, worker in workers.items() if "test_marked" in test}
    assert len(marked) == 1, f"marked tests ran on {sorted(marked)}"
    assert set(workers.values()) == {"gw0", "gw1"}, "the other worker took the in-process tests"


def test_soak_tests_come_first_and_outside_the_serial_group(tmp_path):
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_a.py").write_text(MODULE.format(marker="slow"))
    (tmp_path / "test_z.py").write_text("import pytest\n\n@pytest.mark.soak\n@pytest.mark.slow\ndef test_waits():\n    pass\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:django", "-p", "no:cacheprovider",
                           "--collect-only", "-q", str(tmp_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    ids = [line for line in done.stdout.splitlines() if "::" in line]
    assert ids[0].endswith("test_z.py::test_waits"), ids[:3]
    assert len(ids) == 14

    workers = run_like_make_test(tmp_path)
    marked = {worker for test, worker in workers.items() if "test_marked" in test}
    assert len(marked) == 1 and len(workers) == 14
    serial = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:django", "-p", "no:cacheprovider",
                             "--collect-only", "-q", "-m", "xdist_group", str(tmp_path)],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    in_group = [line for line in serial.stdout.splitlines() if "::" in line]
    assert len(in_group) == 3 and not any("test_waits" in t for t in in_group), "a soak test marked slow is not serial"
