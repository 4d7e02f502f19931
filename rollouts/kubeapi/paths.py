"""What a request path names: a group-version, a kind (by its plural), a
namespace, a name and a subresource, as the API server reads
/api/v1/namespaces/{ns}/{plural}/{name}/{sub} and /apis/{group}/{version}/…"""

from dataclasses import dataclass

from rollouts.api.errors import NotFound
from rollouts.api.kinds import Kind

from .discovery import has_status, serves


@dataclass(frozen=True)
class Target:
    group: str
    version: str
    kind: Kind
    namespace: str | None  # None: every namespace (a namespaced kind listed cluster-wide)
    name: str = ""
    subresource: str = ""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def details(self) -> dict:
        """The `details` of a Status about this target."""
        found = {"group": self.group, "kind": self.kind.plural}
        return {"name": self.name, **found} if self.name else found


class PathNotFound(NotFound):
    """A path that names nothing the hub serves (the API server's bare 404)."""

    def __init__(self, path: str):
        Exception.__init__(self, f'the server could not find the requested resource ({path})')


def split(parts: list[str]) -> tuple[str | None, str, list[str]]:
    """(namespace, plural, rest) of the path after the group-version.
    `namespaces/x` is the Namespace x; `namespaces/x/status` and
    `namespaces/x/finalize` its subresources; `namespaces/x/{plural}/…` a
    namespaced kind."""
    if parts[:1] == ["namespaces"] and len(parts) >= 3 and parts[2] not in ("status", "finalize"):
        return parts[1], parts[2], parts[3:]
    return None, parts[0], parts[1:]


def resolve(kinds: list[Kind], group: str, version: str, parts: list[str], path: str) -> Target:
    """The Target of `parts` (non-empty), or PathNotFound."""
    namespace, plural, rest = split(parts)
    kind = next((k for k in kinds if k.plural == plural and serves(k, group, version)), None)
    if kind is None or len(rest) > 2 or (namespace is not None and not kind.namespaced):
        raise PathNotFound(path)
    if kind.namespaced and namespace is None and rest:
        raise PathNotFound(path)  # a namespaced object is always addressed in its namespace
    if len(rest) == 2 and not (rest[1] == "status" and has_status(kind, version)):
        raise PathNotFound(path)  # the one subresource served
    return Target(group, version, kind, namespace if kind.namespaced else "", *rest)
