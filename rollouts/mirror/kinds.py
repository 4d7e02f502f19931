"""The hub kinds Fleet UI mirrors, in the order a full list goes through them
(member clusters and placements before the snapshots that point at them)."""

from dataclasses import dataclass

from rollouts import models as m


@dataclass(frozen=True)
class HubKind:
    """A kind as the hub serves it, and the model its mirror lives in.

    versions: tried in order; the first one the hub serves is used. Both the
    legacy (Azure/fleet <= v0.16, kubefleet v0.0.1) and the current shapes
    are served as v1beta1; they differ only inside spec and status, which
    are mirrored as they are (semantics §13)."""

    model: type
    versions: tuple[str, ...] = ("v1beta1", "v1")

    @property
    def kind(self) -> str:
        return self.model.KIND

    @property
    def group(self) -> str:
        return self.model.API_GROUP

    @property
    def plural(self) -> str:
        return self.model.PLURAL

    @property
    def namespaced(self) -> bool:
        return self.model.NAMESPACED


MIRRORED_KINDS = [
    HubKind(m.MemberCluster),
    HubKind(m.ClusterResourcePlacement),
    HubKind(m.ResourcePlacement),
    HubKind(m.ClusterSchedulingPolicySnapshot),
    HubKind(m.SchedulingPolicySnapshot),
    HubKind(m.ClusterResourceSnapshot),
    HubKind(m.ResourceSnapshot),
    HubKind(m.ClusterStagedUpdateStrategy),
    HubKind(m.StagedUpdateStrategy),
    HubKind(m.ClusterStagedUpdateRun),
    HubKind(m.StagedUpdateRun),
    HubKind(m.ClusterApprovalRequest),
    HubKind(m.ApprovalRequest),
]

BY_KIND = {k.kind: k for k in MIRRORED_KINDS}


def hub_kind_of(obj) -> HubKind:
    """The mirrored kind of a model row; KeyError for kinds never mirrored."""
    return BY_KIND[obj.KIND]
