from .base import FleetObject
from .connections import HubConnection, MemberCredential, MirroredObject
from .freezes import BreakGlass, Freeze, FreezeStop
from .health import Heartbeat
from .healthgates import HealthCheck
from .hub import AppendOnlyError, Event, HubResource, MemberObject
from .notifications import Delivery, Subscription
from .placement import (
    ClusterResourceBinding,
    ClusterResourcePlacement,
    ClusterResourceSnapshot,
    ClusterSchedulingPolicySnapshot,
    MemberCluster,
    ResourceBinding,
    ResourcePlacement,
    ResourceSnapshot,
    SchedulingPolicySnapshot,
)
from .policies import ApprovalPolicy, ApprovalVote
from .preferences import UserPreference
from .ratelimits import RateCounter
from .tokens import ApiToken
from .updaterun import (
    ApprovalRequest,
    ClusterApprovalRequest,
    ClusterStagedUpdateRun,
    ClusterStagedUpdateStrategy,
    StagedUpdateRun,
    StagedUpdateStrategy,
)

FLEET_MODELS = [
    MemberCluster,
    ClusterResourcePlacement,
    ResourcePlacement,
    ClusterSchedulingPolicySnapshot,
    SchedulingPolicySnapshot,
    ClusterResourceSnapshot,
    ResourceSnapshot,
    ClusterResourceBinding,
    ResourceBinding,
    ClusterStagedUpdateStrategy,
    StagedUpdateStrategy,
    ClusterStagedUpdateRun,
    StagedUpdateRun,
    ClusterApprovalRequest,
    ApprovalRequest,
]

__all__ = [m.__name__ for m in FLEET_MODELS] + ["FleetObject", "AppendOnlyError", "Event", "HubResource", "MemberObject", "FLEET_MODELS",
                                              "HubConnection", "MemberCredential", "MirroredObject",
                                              "ApprovalPolicy", "ApprovalVote", "Heartbeat", "HealthCheck",
                                              "RateCounter", "Freeze", "FreezeStop", "BreakGlass",
                                              "Subscription", "Delivery", "UserPreference", "ApiToken"]
