from django.db.models.signals import post_delete

from .base import FleetObject, fleet_models
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
from .revisions import HubRevision, Tombstone, tombstone_record
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
                                              "Subscription", "Delivery", "UserPreference", "HubRevision", "Tombstone", "ApiToken"]

# Every deletion of a Fleet object, whatever the path (store.delete, an FK
# cascade, a queryset delete, the admin), leaves a tombstone for watchers
# (rollouts/models/revisions.py).
for _model in fleet_models():
    post_delete.connect(tombstone_record, sender=_model, dispatch_uid=f"tombstone:{_model._meta.label}")
