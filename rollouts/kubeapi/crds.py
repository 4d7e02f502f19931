"""The vendored KubeFleet CRDs (rollouts/api/crds/*.yaml), read once.

Everything here goes through `_crd(group, kind)` so it can be pointed at the
shared CRD loader in one place."""

from functools import cache
from pathlib import Path

import yaml

CRD_DIR = Path(__file__).resolve().parent.parent / "api" / "crds"


@cache
def _all_crds() -> dict[tuple[str, str], dict]:
    """{(group, kind): CRD} of every vendored CRD (parsed on first use: ~0.3 s)."""
    found = {}
    for path in sorted(CRD_DIR.glob("*.yaml")):
        for doc in yaml.load_all(path.read_text(), Loader=yaml.CSafeLoader):
            if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                spec = doc["spec"]
                found[(spec["group"], spec["names"]["kind"])] = doc
    return found


def _crd(group: str, kind: str) -> dict | None:
    """The vendored CRD of group/kind, or None for a kind KubeFleet does not define."""
    return _all_crds().get((group, kind))


def crd_version(group: str, kind: str, version: str) -> dict | None:
    """The CRD's entry for `version` (schema, printer columns, subresources), or None."""
    crd = _crd(group, kind)
    if crd is None:
        return None
    return next((v for v in crd["spec"].get("versions") or [] if v.get("name") == version), None)


def categories(group: str, kind: str) -> list[str]:
    crd = _crd(group, kind)
    return list(((crd or {}).get("spec", {}).get("names") or {}).get("categories") or [])


def schema(group: str, kind: str, version: str) -> dict | None:
    """The openAPIV3Schema of group/version/kind, or None."""
    entry = crd_version(group, kind, version)
    return ((entry or {}).get("schema") or {}).get("openAPIV3Schema")


def has_status(group: str, kind: str, version: str) -> bool:
    return "status" in ((crd_version(group, kind, version) or {}).get("subresources") or {})
