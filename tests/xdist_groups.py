"""Scheduling under pytest-xdist (`make test`: `-n 2 --dist loadgroup`).

Tests marked slow, celery or browser start processes that need the CPU
themselves (Celery workers, PostgreSQL writers, Chromium, `fleet engine`).
They all join one xdist group, so they run one after another on one worker
while the other worker takes the in-process tests: they never compete with
each other for this machine's two cores, and a new test with one of those
markers needs nothing else. Tests marked soak (they mostly wait on a clock:
the README tour's TimedWait, a retry backoff, beat's ticks) are not in that
group even when marked slow or celery, and are moved to the front of the
run, so their wait overlaps the in-process tests. (Two groups, Celery apart from the rest, were
no faster: the Celery load tests and the tests that spawn `manage.py`
processes slowed each other down, `fleet engine`'s tutorial test from 24 s
to 82 s; BENCHMARKS.md.)

xdist's own loadgroup tells the controller a test's group by appending
`@group` to the node id in the worker, which pytest 9.2's node ids no longer
allow (pytest-dev/pytest-xdist#1386: the groups are silently ignored). So
each worker also writes its groups to a file the controller gave it, and the
scheduler here reads them from there (and still understands `@group` ids).
"""

import json
import shutil
import tempfile
from pathlib import Path

import pytest

try:
    from xdist.scheduler import LoadGroupScheduling
except ImportError:  # pytest-xdist is a dev dependency; without it tests run serially
    LoadGroupScheduling = None

SERIAL_MARKERS = ("slow", "celery", "browser")
SERIAL_GROUP = "real-processes"
GROUPS_DIR = "fleetui_xdist_groups"  # the key in each worker's workerinput
_groups_dir_key = pytest.StashKey[Path]()


@pytest.hookimpl(tryfirst=True)  # before xdist's worker reads the xdist_group marks
def pytest_collection_modifyitems(config, items):
    groups = {}
    for item in items:
        soak = item.get_closest_marker("soak") is not None  # waits more than it computes: not serial
        if not soak and any(item.get_closest_marker(marker) for marker in SERIAL_MARKERS):
            item.add_marker(pytest.mark.xdist_group(SERIAL_GROUP))
        names = {_group_name(mark) for mark in item.iter_markers("xdist_group")}
        if names:
            groups[item.nodeid] = "_".join(sorted(names))
    workerinput = getattr(config, "workerinput", {})
    if GROUPS_DIR in workerinput:
        path = Path(workerinput[GROUPS_DIR]) / f"{workerinput['workerid']}.json"
        path.write_text(json.dumps(groups), encoding="utf-8")


class SoakFirst:
    """Tests marked soak mostly sleep: first in the run, their wait overlaps
    the in-process tests instead of adding to the end of it. Last of the
    collection hooks, after pytest-django's sort by database use."""

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items):
        items.sort(key=lambda item: item.get_closest_marker("soak") is None)


def pytest_configure(config):
    config.pluginmanager.register(SoakFirst(), "fleetui-soak-first")


def _group_name(mark) -> str:
    return str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """Controller: tell each worker where to write its groups."""
    config = node.config
    if _groups_dir_key not in config.stash:
        config.stash[_groups_dir_key] = Path(tempfile.mkdtemp(prefix="fleetui-xdist-groups-"))
    node.workerinput[GROUPS_DIR] = str(config.stash[_groups_dir_key])


def pytest_unconfigure(config):
    if _groups_dir_key in config.stash:
        shutil.rmtree(config.stash[_groups_dir_key], ignore_errors=True)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "loadgroup" or LoadGroupScheduling is None:
        return None
    return GroupsFromWorkers(config, log)


if LoadGroupScheduling is not None:

    class GroupsFromWorkers(LoadGroupScheduling):
        """loadgroup, with each test's group read from what the workers wrote.

        The largest group is handed out first (xdist orders work units by
        size), so the serial group starts at once on one worker."""

        _groups: dict[str, str] | None = None

        def _split_scope(self, nodeid: str) -> str:
            if self._groups is None:
                self._groups = self._read_groups()
            return self._groups.get(nodeid) or super()._split_scope(nodeid)

        def _read_groups(self) -> dict[str, str]:
            # Called once every worker has finished collecting: the files are written.
            folder = self.config.stash.get(_groups_dir_key, None)
            groups: dict[str, str] = {}
            for path in sorted(folder.glob("*.json")) if folder else []:
                groups.update(json.loads(path.read_text(encoding="utf-8")))
            return groups
