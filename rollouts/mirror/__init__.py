"""Mirroring KubeFleet hubs: their objects in our models, read-only.

An admin adds a HubConnection (kubeconfig and context, stored encrypted).
Sync sessions (rollouts.tasks_k8s, kept alive by Celery beat) list and then
watch the hub's runs, strategies, approval requests, placements, snapshots
and member clusters, and mirror them into the same models as our own
objects, each marked by a MirroredObject row. The dashboard shows mirrored
runs like ours; what a person does to them goes to the hub:

    approve_on_hub(request, actor=, message=)    merge patch of status (Approved)
    set_run_state_on_hub(run, "Stop"|"Run", actor=)    merge patch of spec.state

Services refuse other writes to mirrored rows (require_local), and the
engine, placement controllers and member agent skip them (local_only).

Modules: kinds (what is mirrored), marks (which rows are mirrored), objects (the writes into the models),
sync (sessions: list, watch, backoff), actions (writes sent to a hub),
selectors (reads for pages), admin (the write-only kubeconfig forms).
"""

from .marks import (
    MirroredReadOnly,
    is_mirrored,
    local_only,
    mirror_mark,
    mirrored_only,
    require_local,
)
from .selectors import HubRow, hub_connection_rows, mirror_sources

# actions and sync talk to hubs through the official client, whose import
# costs ~0.4 s: load them on first use, so a `fleet get` does not pay it.
_LAZY = {
    "HubRefused": "actions", "approve_on_hub": "actions", "credential_save": "actions",
    "credentials_rotate": "actions", "hub_connection_delete": "actions", "member_credential_delete": "actions",
    "set_run_state_on_hub": "actions",
    "SyncResult": "sync", "hub_connections_due": "sync", "hub_sync": "sync", "hubs_keep_synced": "sync",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "HubRefused", "HubRow", "MirroredReadOnly", "SyncResult", "hub_connection_rows", "hubs_keep_synced",
    "mirror_sources", "approve_on_hub", "credential_save", "credentials_rotate", "hub_connection_delete", "hub_connections_due",
    "hub_sync", "is_mirrored", "local_only", "member_credential_delete", "mirror_mark", "mirrored_only",
    "require_local", "set_run_state_on_hub",
]
