"""Plain data the state machine reads (the world as one pass sees it) and the
decision it returns. No ORM objects cross this line, so the state machine
can be tested without a database."""

from dataclasses import dataclass, field
from datetime import datetime

from .freezes import FreezeInfo
from .protection import Protection


@dataclass(frozen=True)
class BindingView:
    name: str
    cluster: str
    state: str  # Scheduled | Bound | Unscheduled
    policy_snapshot: str
    resource_snapshot: str
    apply_strategy: dict | None
    cluster_resource_override_snapshots: list | None
    resource_override_snapshots: list | None
    generation: int
    conditions: tuple = ()


@dataclass(frozen=True)
class PolicySnapshotView:
    name: str
    labels: dict
    annotations: dict
    generation: int
    conditions: tuple = ()


@dataclass(frozen=True)
class ResourceSnapshotView:
    name: str
    labels: dict
    annotations: dict


@dataclass(frozen=True)
class ApprovalView:
    """policy_met: False when a Fleet UI approval policy governs the gate and
    its votes do not reach the quorum; Approved=True alone then opens nothing."""

    name: str
    parent_run: str
    target_stage: str
    generation: int
    conditions: tuple = ()
    policy_met: bool = True
    break_glass: bool = False  # approved during a freeze by two people: its stage may go on (docs/freezes.md)


# A cluster updating longer than this makes the run UpdateRunStuck (§4.8).
STUCK_THRESHOLD_SECONDS = 300.0


@dataclass
class World:
    """Everything one pass over a run needs, loaded with a bounded number of queries."""

    run_name: str
    namespace: str  # "" for the cluster-scoped family
    generation: int
    spec: dict
    status: dict
    now: datetime
    placement: dict | None  # {"name", "spec"}; None when not found
    policy_snapshots: list[PolicySnapshotView]
    bindings: list[BindingView]
    member_labels: dict[str, dict]  # member cluster name -> labels
    strategy: dict | None = None  # the strategy's spec; None when not found
    resource_snapshots: list[ResourceSnapshotView] = field(default_factory=list)
    approvals: dict[str, ApprovalView] = field(default_factory=dict)
    protections: list[Protection] = field(default_factory=list)  # read while initializing only
    stuck_threshold_seconds: float = STUCK_THRESHOLD_SECONDS
    frozen: FreezeInfo | None = None  # the freeze holding this run's placement now: no stage or cluster starts
    # What passes compute from the parts of the world no pass changes (the
    # members' labels, the strategy snapshot): shared by the worlds an
    # advance makes from this one with its own writes (dataclasses.replace).
    derived: dict = field(default_factory=dict, compare=False, repr=False)


# Actions the runner carries out, in order, before it saves the run status.


@dataclass(frozen=True)
class BindBinding:
    """Write the binding spec (state Bound, snapshot, overrides, apply strategy)
    when `spec` is given, then set RolloutStarted=True afresh."""

    name: str
    spec: dict | None
    message: str


@dataclass(frozen=True)
class CreateApprovalRequest:
    name: str
    stage: str
    task_type: str  # beforeStage | afterStage


@dataclass(frozen=True)
class AcceptApproval:
    name: str


@dataclass(frozen=True)
class DeleteBinding:
    name: str
    cluster: str


@dataclass
class Decision:
    """What one pass decided: the run's new status, the actions to take first,
    and when to look again (None: only when something changes)."""

    status: dict
    actions: list = field(default_factory=list)
    requeue_after: float | None = None
    retry_error: str | None = None  # a retryable problem, logged and retried with backoff
