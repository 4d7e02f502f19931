"""The lock files install what pyproject.toml asks for: `make install` uses
them with --require-hashes, so a dependency added to pyproject.toml without
`make lock` would be missing on a fresh machine."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)", re.MULTILINE)


def pins(lock: str) -> dict[str, str]:
    text = (ROOT / lock).read_text()
    return {canonical(name): version for name, version in PIN.findall(text)}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_lock_files_are_stamped_with_pyprojects_current_dependencies():
    done = subprocess.run([sys.executable, "scripts/lockfile.py", "check"], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("lock, extras", [("requirements.lock", []), ("requirements-dev.lock", ["dev"])])
def test_every_dependency_is_pinned_at_a_version_pyproject_allows(lock, extras):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + [r for extra in extras for r in project["optional-dependencies"][extra]]
    pinned = pins(lock)
    for text in wanted:
        requirement = Requirement(text)
        name = canonical(requirement.name)
        assert name in pinned, f"{requirement.name} is not in {lock}: run make lock"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (
            f"{lock} pins {requirement.name}=={pinned[name]}, pyproject.toml wants {requirement.specifier}")


def test_every_pin_carries_a_hash():
    for lock in ("requirements.lock", "requirements-dev.lock"):
        blocks = re.split(r"\n(?=[A-Za-z0-9])", (ROOT / lock).read_text())
        for block in blocks:
            if PIN.match(block):
                assert "--hash=sha256:" in block, f"{lock}: {block.splitlines()[0]} has no hash"


def test_a_stale_lock_is_refused_with_the_command_that_fixes_it(tmp_path):
    for name in ("pyproject.toml", "requirements.lock", "requirements-dev.lock"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "lockfile.py").write_text((ROOT / "scripts" / "lockfile.py").read_text())
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"PyYAML>=6.0",', '"PyYAML>=6.0",\n    "requests>=2",'))
    done = subprocess.run([sys.executable, "scripts/lockfile.py", "check"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert done.returncode == 1
    assert "requirements.lock does not match pyproject.toml's dependencies: run `make lock`" in done.stderr
