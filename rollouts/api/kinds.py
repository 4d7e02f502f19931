"""Which kinds the hub serves and how a person may name them.

Fleet kinds map to their own models. Core Kubernetes kinds and instances of
CustomResourceDefinitions applied to the hub are stored as HubResource rows.
A kind the hub has never heard of, and whose CRD was not applied, is refused
as kubectl refuses it.
"""

from dataclasses import dataclass, field

from rollouts import models as m

from . import crds
from .errors import UnknownKind


@dataclass(frozen=True)
class Kind:
    group: str
    version: str
    kind: str
    plural: str
    short_names: tuple[str, ...] = ()
    namespaced: bool = False
    model: type = m.HubResource
    served_versions: tuple[str, ...] = field(default=())

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def resource(self) -> str:
        """`plural.group`, the name the API server uses in its messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def is_fleet(self) -> bool:
        return self.model is not m.HubResource

    def names(self) -> set[str]:
        return {self.kind.lower(), self.plural, self.singular, self.resource, *self.short_names}


def _fleet_kind(model) -> Kind:
    return Kind(
        group=model.API_GROUP,
        version=model.API_VERSION,
        kind=model.KIND,
        plural=model.PLURAL,
        short_names=model.SHORT_NAMES,
        namespaced=model.NAMESPACED,
        model=model,
        served_versions=("v1beta1", "v1"),
    )


FLEET_KINDS = [_fleet_kind(model) for model in m.FLEET_MODELS]

CORE_KINDS = [
    Kind("", "v1", "Namespace", "namespaces", ("ns",)),
    Kind("", "v1", "ConfigMap", "configmaps", ("cm",), True),
    Kind("", "v1", "Secret", "secrets", (), True),
    Kind("", "v1", "Service", "services", ("svc",), True),
    Kind("", "v1", "ServiceAccount", "serviceaccounts", ("sa",), True),
    Kind("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", ("pvc",), True),
    Kind("", "v1", "ResourceQuota", "resourcequotas", ("quota",), True),
    Kind("", "v1", "LimitRange", "limitranges", ("limits",), True),
    Kind("apps", "v1", "Deployment", "deployments", ("deploy",), True),
    Kind("apps", "v1", "StatefulSet", "statefulsets", ("sts",), True),
    Kind("apps", "v1", "DaemonSet", "daemonsets", ("ds",), True),
    Kind("batch", "v1", "Job", "jobs", (), True),
    Kind("batch", "v1", "CronJob", "cronjobs", ("cj",), True),
    Kind("networking.k8s.io", "v1", "Ingress", "ingresses", ("ing",), True),
    Kind("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", ("netpol",), True),
    Kind("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", ("pdb",), True),
    Kind("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", ("hpa",), True),
    Kind("rbac.authorization.k8s.io", "v1", "Role", "roles", (), True),
    Kind("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", (), True),
    Kind("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", ()),
    Kind("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", ()),
    Kind("storage.k8s.io", "v1", "StorageClass", "storageclasses", ("sc",)),
    Kind("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", ("pc",)),
    Kind("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", ("crd", "crds")),
]

# Autoscaling and a few others serve older versions too; accept them on input.
_EXTRA_VERSIONS = {"HorizontalPodAutoscaler": ("v1", "v2"), "CronJob": ("v1", "v1beta1")}


def _kind_from_crd(crd: m.HubResource) -> Kind | None:
    spec = (crd.content or {}).get("spec") or {}
    names = spec.get("names") or {}
    versions = [v.get("name") for v in spec.get("versions") or [] if isinstance(v, dict) and v.get("name")]
    if not (spec.get("group") and names.get("kind") and names.get("plural") and versions):
        return None
    storage = next((v["name"] for v in spec["versions"] if isinstance(v, dict) and v.get("storage")), versions[0])
    return Kind(
        group=spec["group"],
        version=storage,
        kind=names["kind"],
        plural=names["plural"],
        short_names=tuple(names.get("shortNames") or ()),
        namespaced=spec.get("scope") == "Namespaced",
        served_versions=tuple(versions),
    )


def _served(kind: Kind) -> tuple[str, ...]:
    """The versions a manifest of `kind` may name. A fleet kind: those its CRD
    serves among the ones Fleet UI stores (v1beta1) or converts (v1); some
    KubeFleet kinds (ResourceSnapshot, ResourceBinding…) serve v1beta1 only."""
    crd = crds.crd_for(kind.group, kind.kind) if kind.is_fleet else None
    if crd is not None:
        return tuple(v for v in kind.served_versions if v in crd.served_versions)
    return kind.served_versions or _EXTRA_VERSIONS.get(kind.kind, (kind.version,))


class KindRegistry:
    """Everything the hub serves right now: fleet, core and CRD kinds.

    Built once per request or command (one query for the CRDs)."""

    def __init__(self):
        crds = m.HubResource.objects.filter(api_group="apiextensions.k8s.io", kind="CustomResourceDefinition")
        builtin = FLEET_KINDS + CORE_KINDS
        taken = {(k.group, k.kind) for k in builtin}
        custom = [k for k in map(_kind_from_crd, crds) if k and (k.group, k.kind) not in taken]
        self.kinds: list[Kind] = builtin + custom

    def resolve(self, name: str) -> Kind:
        """The kind a person means by `name` (kind, plural, singular or short name)."""
        wanted = name.lower()
        for kind in self.kinds:
            if wanted in kind.names():
                return kind
        raise UnknownKind(f'the server doesn\'t have a resource type "{name}"')

    def for_manifest(self, api_version: str, kind_name: str) -> Kind:
        """The kind of a manifest's apiVersion/kind, or UnknownKind as kubectl says it."""
        group, _, version = api_version.rpartition("/")
        for kind in self.kinds:
            if kind.group == group and kind.kind == kind_name:
                if version in _served(kind):
                    return kind
        raise UnknownKind(
            f'no matches for kind "{kind_name}" in version "{api_version}" '
            "(ensure its CustomResourceDefinition is applied first)"
        )
