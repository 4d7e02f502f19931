"""The newcomer's path: the README's tour pasted as is against a fresh `make
run`-style hub, the `fleet` alias it defines, `fleet wait --for=create` that
lets it be pasted in one go, and what `make run` prints and serves on."""

import importlib.util
import re
import signal
import subprocess
import sys

import pytest

from rollouts.demo_users import DemoUser, demo_logins_text

from .test_engine_process import ROOT, Hub

ALIAS = "alias fleet='.venv/bin/python manage.py fleet'"


def tour_block() -> str:
    """The first ```sh block after the README's tour heading."""
    readme = (ROOT / "README.md").read_text()
    tour = readme[readme.index("## A tour of the fleet command"):]
    return re.search(r"```sh\n(.*?)```", tour, re.S).group(1)


def demo_host():
    spec = importlib.util.spec_from_file_location("demo_host", ROOT / "scripts" / "demo_host.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_tour_defines_the_fleet_alias_on_its_first_line():
    assert tour_block().splitlines()[0] == ALIAS


def test_make_run_serves_on_host_and_prints_the_tours_alias_last():
    """`make -n` prints the recipe, variables expanded, without running it."""
    done = subprocess.run(["make", "--no-print-directory", "-n", "run", "HOST=0.0.0.0:9123"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=True)
    lines = done.stdout.splitlines()
    assert lines[-1] == ".venv/bin/python manage.py fleet serve 0.0.0.0:9123"
    echoed = [line for line in lines if line.startswith("echo")]
    assert echoed[-3:] == [f'echo "  {ALIAS}"', 'echo "  fleet get crp"', "echo"]
    assert any("migrate --noinput -v0" in line for line in lines)


@pytest.mark.django_db
def test_wait_for_create_returns_once_the_object_exists(fleet):
    assert fleet("wait", "membercluster/member1", "--for=create", "--timeout=300ms").code == 1
    fleet("demo")
    result = fleet("wait", "membercluster/member1", "--for=create", "--timeout=1s")
    assert (result.code, result.out) == (0, "membercluster.cluster.kubernetes-fleet.io/member1 condition met\n")


def test_the_logins_are_one_aligned_line_per_user():
    users = [DemoUser("admin", "pw-one", "admins"), DemoUser("viewer", "pw-two", "viewers")]
    assert demo_logins_text(users) == "  admin   pw-one   (admins)\n  viewer  pw-two   (viewers)"


@pytest.mark.parametrize(
    ("host", "allowed", "url"),
    [
        pytest.param("127.0.0.1:8000", ["localhost", "127.0.0.1", "[::1]"], "http://127.0.0.1:8000/", id="default"),
        pytest.param("9000", ["localhost", "127.0.0.1", "[::1]"], "http://127.0.0.1:9000/", id="port only"),
        pytest.param("10.1.2.3:80", ["localhost", "127.0.0.1", "[::1]", "10.1.2.3"], "http://10.1.2.3:80/", id="address"),
        pytest.param("[fd00::5]:9000", ["localhost", "127.0.0.1", "[::1]", "[fd00::5]"], "http://[fd00::5]:9000/",
                     id="ipv6"),
    ],
)
def test_make_run_answers_to_the_address_it_serves_on(host, allowed, url):
    module = demo_host()
    assert (module.allowed_hosts(host), module.url(host)) == (allowed, url)


def test_serving_on_every_address_allows_this_machines_name():
    module = demo_host()
    hosts = module.allowed_hosts("0.0.0.0:9000")
    assert hosts[:3] == ["localhost", "127.0.0.1", "[::1]"] and module.socket.gethostname() in hosts


@pytest.mark.soak  # 60 s of it is the tour's TimedWait: it waits beside the in-process tests
def test_the_readme_tour_runs_as_pasted_against_a_fresh_demo_hub(tmp_path):
    """Every command of the tour exits 0, in order, with `fleet engine` running
    (as `make run`'s server runs it) — about 90 s: the tour keeps its 1m soak."""
    hub = Hub(tmp_path)
    hub.manage("migrate", "--noinput", "-v0")
    hub.manage("fleet", "demo")
    engine = subprocess.Popen([sys.executable, "manage.py", "fleet", "engine", "--interval", "1"], cwd=ROOT,
                              env=hub.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    script = tmp_path / "tour.sh"
    # What a person's interactive shell does for them: aliases expand, and
    # (for the test) the first failing command stops the tour.
    script.write_text("set -euo pipefail\nshopt -s expand_aliases\n" + tour_block())
    try:
        done = subprocess.run(["bash", "-x", str(script)], cwd=ROOT, env=hub.env, capture_output=True, text=True,
                              timeout=420)
    finally:
        engine.send_signal(signal.SIGTERM)
        engine.wait(timeout=15)
    assert done.returncode == 0, f"the tour stopped:\n{done.stderr[-3000:]}"
    assert "clusterstagedupdaterun.placement.kubernetes-fleet.io/example-run condition met" in done.stdout
    assert "value2" in done.stdout
