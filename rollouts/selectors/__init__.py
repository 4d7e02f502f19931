"""Reads: everything a page shows, with the queries it needs made up front
(no template ever walks a relation). One module per subject; the names
below are the public ones."""

from .approvals import (
    ApprovalReview,
    ApprovalRow,
    Approver,
    approval_approver,
    approval_get,
    approval_list,
    approval_review,
    approvals_pending,
    approvals_waiting_count,
)
from .audit import (
    EXPORT_COLUMNS,
    AuditFilter,
    AuditPage,
    audit_export_rows,
    audit_page,
    event_kinds,
)
from .fleet import members_list, placement_detail, placements_list, strategies_list
from .runs import RunRow, RunState, run_get, run_list, run_placements, run_state, runs_active
from .snapshots import ClusterGroup, ObjectDiff, cluster_groups, resources_diff, snapshot_diff
from .timeline import Timeline, run_timeline

__all__ = [
    "ApprovalReview", "ApprovalRow", "Approver", "approval_approver", "approval_get", "approval_list",
    "approval_review", "approvals_pending", "approvals_waiting_count", "EXPORT_COLUMNS", "AuditFilter", "AuditPage", "audit_export_rows",
    "audit_page", "event_kinds", "members_list", "placement_detail", "placements_list", "strategies_list",
    "RunRow", "RunState", "run_get", "run_list", "run_placements", "run_state", "runs_active", "ObjectDiff",
    "resources_diff", "snapshot_diff", "ClusterGroup", "cluster_groups", "Timeline", "run_timeline",
]
