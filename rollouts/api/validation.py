"""Validation of manifests: the OpenAPI schema and CEL rules of the CRDs
(staged-update-semantics.md §2–3), with messages that name the field path.

validate(kind, manifest, old) raises errors.Invalid; old is the stored
object's manifest on update, None on create.
"""

import re

from .errors import Invalid
from .kinds import Kind

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def validate(kind: Kind, manifest: dict, old: dict | None = None) -> None:
    causes: list[tuple[str, str]] = []
    meta = manifest.get("metadata") or {}
    name = meta.get("name")
    if not name or not isinstance(name, str):
        raise Invalid(kind.kind, "", [("metadata.name", "Required value: name is required")])
    if len(name) > 253 or not _SUBDOMAIN.match(name):
        causes.append(("metadata.name", f'Invalid value: "{name}": must be a lowercase RFC 1123 subdomain'))
    if causes:
        raise Invalid(kind.kind, name, causes)


def validate_status(kind: Kind, manifest: dict) -> None:
    pass
