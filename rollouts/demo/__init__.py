"""The tutorial's demo fleet (seed-tutorial.md §1, §2 and §4) as YAML files
beside this module, and a loader that applies them like `fleet apply`.

The update runs (§5, §6) are left for the person to create: that is the
part of the tutorial the demo is for.
"""

from pathlib import Path

from rollouts.api.manifests import parse_documents
from rollouts.services.objects import ApplyResult, manifests_apply

DEMO_DIR = Path(__file__).resolve().parent


def demo_documents() -> list[dict]:
    """Every document of the demo files, in file-name order."""
    docs: list[dict] = []
    for path in sorted(DEMO_DIR.glob("*.yaml")):
        docs += parse_documents(path.read_text(encoding="utf-8"), path.name)
    return docs


def load_demo(actor: str = "demo") -> list[ApplyResult]:
    """Apply the demo fleet in one transaction. Idempotent: objects that
    already say the same thing come back `unchanged`."""
    return manifests_apply(docs=demo_documents(), actor=actor)
