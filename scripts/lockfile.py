"""Keep the lock files honest: `check` fails when pyproject.toml's dependencies
changed since `make lock` wrote requirements*.lock.

Each lock file carries a stamp line, `# pyproject-sha256: <hash>`, over the
dependency lists it was compiled from. Standard library only: it runs before
the virtualenv exists (`make install`) and in CI.

    python3 scripts/lockfile.py stamp   # after compiling (make lock)
    python3 scripts/lockfile.py check   # exit 1, one line per stale lock
"""

import hashlib
import json
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAMP = "# pyproject-sha256: "
# Each lock file and the extras it is compiled with.
LOCKS = {"requirements.lock": [], "requirements-dev.lock": ["dev"]}


def dependencies_digest(extras: list[str]) -> str:
    """sha256 over requires-python, the dependencies and the named extras."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {
        "requires-python": project.get("requires-python", ""),
        "dependencies": sorted(project.get("dependencies", [])),
        "extras": {name: sorted(project.get("optional-dependencies", {}).get(name, [])) for name in extras},
    }
    return hashlib.sha256(json.dumps(wanted, sort_keys=True).encode()).hexdigest()


def stamp() -> None:
    for name, extras in LOCKS.items():
        path = ROOT / name
        lines = [line for line in path.read_text().splitlines() if not line.startswith(STAMP)]
        path.write_text("\n".join([STAMP + dependencies_digest(extras), *lines]) + "\n")


def check() -> int:
    stale = []
    for name, extras in LOCKS.items():
        path = ROOT / name
        if not path.exists():
            stale.append(f"{name} is missing: run `make lock`")
            continue
        first = path.read_text().split("\n", 1)[0]
        if first != STAMP + dependencies_digest(extras):
            stale.append(f"{name} does not match pyproject.toml's dependencies: run `make lock` and commit it")
    for line in stale:
        print(line, file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "check"
    if command == "stamp":
        stamp()
    elif command == "check":
        sys.exit(check())
    else:
        sys.exit(f"usage: {sys.argv[0]} stamp|check")
