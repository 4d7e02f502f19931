"""The cluster-scoped and namespaced families behave identically; a Family
names the models one of them uses, so controllers are written once."""

from dataclasses import dataclass

from rollouts import models as m


@dataclass(frozen=True)
class Family:
    placement: type
    policy_snapshot: type
    resource_snapshot: type
    binding: type
    strategy: type
    run: type
    approval_request: type
    condition_prefix: str

    @property
    def namespaced(self) -> bool:
        return self.placement.NAMESPACED


CLUSTER = Family(
    placement=m.ClusterResourcePlacement,
    policy_snapshot=m.ClusterSchedulingPolicySnapshot,
    resource_snapshot=m.ClusterResourceSnapshot,
    binding=m.ClusterResourceBinding,
    strategy=m.ClusterStagedUpdateStrategy,
    run=m.ClusterStagedUpdateRun,
    approval_request=m.ClusterApprovalRequest,
    condition_prefix="ClusterResourcePlacement",
)

NAMESPACED = Family(
    placement=m.ResourcePlacement,
    policy_snapshot=m.SchedulingPolicySnapshot,
    resource_snapshot=m.ResourceSnapshot,
    binding=m.ResourceBinding,
    strategy=m.StagedUpdateStrategy,
    run=m.StagedUpdateRun,
    approval_request=m.ApprovalRequest,
    condition_prefix="ResourcePlacement",
)

FAMILIES = (CLUSTER, NAMESPACED)

# The kind names of each role in both families, for code that tells objects apart by KIND.
PLACEMENT_KINDS = tuple(f.placement.KIND for f in FAMILIES)
STRATEGY_KINDS = tuple(f.strategy.KIND for f in FAMILIES)
RUN_KINDS = tuple(f.run.KIND for f in FAMILIES)
APPROVAL_KINDS = tuple(f.approval_request.KIND for f in FAMILIES)


def family_of(model) -> Family:
    """The family a model class (or instance's class) belongs to."""
    model = model if isinstance(model, type) else type(model)
    return NAMESPACED if model.NAMESPACED else CLUSTER
