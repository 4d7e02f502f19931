"""Discovery documents: /version, /api, /apis and each group-version's
APIResourceList, built from the kinds the hub serves (KindRegistry).

Both forms are served: the aggregated apidiscovery.k8s.io/v2 document at /api
and /apis when the Accept header asks for it (kubectl asks for it first), and
the legacy form (one APIResourceList per group-version) otherwise."""


from rollouts.api.kinds import Kind

from . import crds

KUBE_VERSION = {"major": "1", "minor": "32", "gitVersion": "v1.32.0-fleetui", "gitCommit": "", "gitTreeState": "",
                "buildDate": "", "goVersion": "", "compiler": "fleetui", "platform": "linux/amd64"}
_READ = ["get", "list", "watch"]
_WRITE = ["create", "delete", "patch", "update"]


def served_versions(kind: Kind) -> tuple[str, ...]:
    """The versions of `kind` served over HTTP, its storage version first."""
    rest = [v for v in kind.served_versions if v != kind.version]
    return (kind.version, *rest)


def serves(kind: Kind, group: str, version: str) -> bool:
    return kind.group == group and version in served_versions(kind)


def version_info() -> dict:
    return dict(KUBE_VERSION)


def api_versions(server_address: str) -> dict:
    """/api: the core group's one version."""
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def api_group_list(kinds: list[Kind]) -> dict:
    """/apis: every named group with its versions, the storage version preferred."""
    groups: dict[str, list[str]] = {}
    for kind in kinds:
        if kind.group:
            versions = groups.setdefault(kind.group, [])
            versions += [v for v in served_versions(kind) if v not in versions]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
        {"name": group, "versions": [{"groupVersion": f"{group}/{v}", "version": v} for v in versions],
         "preferredVersion": {"groupVersion": f"{group}/{versions[0]}", "version": versions[0]}}
        for group, versions in sorted(groups.items())]}


def api_group(kinds: list[Kind], group: str) -> dict | None:
    """/apis/{group}: one entry of the list, or None for an unknown group."""
    return next((g for g in api_group_list(kinds)["groups"] if g["name"] == group), None)


def resource_list(kinds: list[Kind], group: str, version: str) -> dict | None:
    """/api/v1 or /apis/{group}/{version}: the APIResourceList, or None when
    no kind is served in that group-version."""
    served = [k for k in kinds if serves(k, group, version)]
    if not served:
        return None
    resources = []
    for kind in sorted(served, key=lambda k: k.plural):
        resources.append(_resource(kind, version))
        if has_status(kind, version):
            resources.append({"name": f"{kind.plural}/status", "singularName": "", "namespaced": kind.namespaced,
                              "kind": kind.kind, "verbs": ["get", "patch", "update"]})
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{group}/{version}".lstrip("/"),
            "resources": resources}


def _resource(kind: Kind, version: str) -> dict:
    entry = {"name": kind.plural, "singularName": kind.singular, "namespaced": kind.namespaced, "kind": kind.kind,
             "verbs": _READ[:2] + _WRITE + ["watch"]}
    if kind.short_names:
        entry["shortNames"] = list(kind.short_names)
    if categories := crds.categories(kind.group, kind.kind):
        entry["categories"] = categories
    return entry


def has_status(kind: Kind, version: str) -> bool:
    """Fleet kinds whose CRD declares the status subresource."""
    return kind.is_fleet and crds.has_status(kind.group, kind.kind, version)


# Aggregated discovery (apidiscovery.k8s.io/v2): /api and /apis answer every
# group-version's resources in one document when the client asks for it, so a
# kubectl with a cold cache makes 2 discovery requests instead of one per group-version.
AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


def wants_aggregated(accept: str) -> bool:
    """Whether the Accept header names aggregated discovery v2 among its choices."""
    return any(part.replace(" ", "").startswith(AGGREGATED) for part in accept.split(","))


def aggregated(kinds: list[Kind], *, core: bool) -> dict:
    """The APIGroupDiscoveryList of the core group (/api) or the named groups (/apis)."""
    groups: dict[str, dict[str, list[dict]]] = {}
    for kind in kinds:
        if (kind.group == "") != core:
            continue
        for version in served_versions(kind):
            groups.setdefault(kind.group, {}).setdefault(version, []).append(_aggregated_resource(kind, version))
    items = [{"metadata": {"name": group}, "versions": [
        {"version": version, "resources": sorted(resources, key=lambda r: r["resource"]), "freshness": "Current"}
        for version, resources in versions.items()]} for group, versions in sorted(groups.items())]
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {},
            "items": items}


def _aggregated_resource(kind: Kind, version: str) -> dict:
    response_kind = {"group": kind.group, "version": version, "kind": kind.kind}
    entry = {"resource": kind.plural, "responseKind": response_kind, "scope": "Namespaced" if kind.namespaced
             else "Cluster", "singularResource": kind.singular, "verbs": _READ[:2] + _WRITE + ["watch"]}
    if kind.short_names:
        entry["shortNames"] = list(kind.short_names)
    if categories := crds.categories(kind.group, kind.kind):
        entry["categories"] = categories
    if has_status(kind, version):
        entry["subresources"] = [{"subresource": "status", "responseKind": response_kind,
                                  "verbs": ["get", "patch", "update"]}]
    return entry
