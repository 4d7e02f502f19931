"""Writing a hub's objects into the models: the mirror's only writer.

Every row written here gets a MirroredObject mark naming its hub. Marked rows
are read-only for everyone else: services refuse to write them and the
engine, placement controllers and member agent leave them alone
(`local_only`). Nothing here talks to the hub; callers hold a transaction.

For the timeline and audit log, runs and approval requests get Event rows
attributed to `hub:<connection>`: created, deleted, spec.state changes, each
condition transition, and approvals made on the hub itself.
"""

import logging
import uuid

from django.db.models import Exists

from rollouts import changes, clock
from rollouts import models as m
from rollouts.api import approval_policy
from rollouts.api.numbers import parse_unsigned
from rollouts.conditions import find_condition
from rollouts.controllers import labels as L
from rollouts.controllers.family import APPROVAL_KINDS, PLACEMENT_KINDS, RUN_KINDS, STRATEGY_KINDS
from rollouts.engine.timeline import transition_events
from rollouts.models.connections import HubConnection, MirroredObject
from rollouts.selectors.common import kind_of
from rollouts.selectors.failures import placement_status_failures
from rollouts.services.events import record
from rollouts.services.policies import strategy_policies_sync

from .kinds import MIRRORED_KINDS, HubKind
from .marks import marks_of

log = logging.getLogger(__name__)

_OWNER = {
    m.ClusterSchedulingPolicySnapshot: (m.ClusterResourcePlacement, L.POLICY_INDEX),
    m.ClusterResourceSnapshot: (m.ClusterResourcePlacement, L.RESOURCE_INDEX),
    m.SchedulingPolicySnapshot: (m.ResourcePlacement, L.POLICY_INDEX),
    m.ResourceSnapshot: (m.ResourcePlacement, L.RESOURCE_INDEX),
}


class Skipped(Exception):
    """The object cannot be mirrored: its name is taken. `str()` is a warning line."""


class Deferred(Skipped):
    """The object needs another one mirrored first (a snapshot its placement)."""


# Writing -------------------------------------------------------------------------


def address_of(hub_kind: HubKind, obj: dict) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return ((meta.get("namespace") or "") if hub_kind.namespaced else ""), meta.get("name") or ""


def _newer(version: str, than: str) -> bool:
    """Whether resourceVersion `version` is newer than `than`. Kubernetes calls
    them opaque, but etcd's are increasing integers: compare those, and take
    any other change as newer."""
    mine, theirs = parse_unsigned(version), parse_unsigned(than)
    if mine is not None and theirs is not None:
        return mine > theirs
    return version != than


def mirror_upsert(connection: HubConnection, hub_kind: HubKind, obj: dict, *, record_events: bool = True,
                  known: dict | None = None) -> str:
    """Create or update the mirror of one hub object. Returns "created",
    "updated" or "unchanged" (an event older than what we hold). Raises
    Skipped when a local object, or another hub's, has the name, and Deferred
    when a snapshot's placement is not mirrored yet. `known` ({(namespace,
    name): (mark, row)}, from `_known`) saves a list the two reads per object."""
    namespace, name = address_of(hub_kind, obj)
    model = hub_kind.model
    if known is None:
        mark = MirroredObject.objects.filter(kind=hub_kind.kind, namespace=namespace, name=name).first()
        row = model.objects.filter(namespace=namespace, name=name).first()
    else:
        mark, row = known.get((namespace, name), (None, None))
    where = f"{hub_kind.kind} {namespace + '/' if namespace else ''}{name}"
    if mark is not None and mark.connection_id != connection.pk:
        raise Skipped(f"{where}: already mirrored from another hub; not mirrored")
    if mark is None and row is not None:
        raise Skipped(f"{where}: Fleet UI has its own object of that name; not mirrored")
    version = str((obj.get("metadata") or {}).get("resourceVersion") or "")
    if mark is not None and row is not None and not _newer(version, mark.hub_resource_version):
        return "unchanged"
    before = {"spec": dict(row.spec or {}), "status": dict(row.status or {})} if row else None
    row = row or model(namespace=namespace, name=name)
    _fill(row, hub_kind, obj, connection, where)
    row.save()
    uid = str((obj.get("metadata") or {}).get("uid") or "")
    if mark is None:
        MirroredObject.objects.create(kind=hub_kind.kind, namespace=namespace, name=name, connection=connection,
                                      hub_resource_version=version, hub_uid=uid)
    else:
        mark.hub_resource_version, mark.hub_uid = version, uid
        mark.save(update_fields=["hub_resource_version", "hub_uid"])
    if record_events:
        _record_change(connection, hub_kind, row, before)
    if hub_kind.kind in STRATEGY_KINDS:
        _strategy_policies_sync(hub_kind, row, obj)
    _announce(row)
    if hub_kind.kind in PLACEMENT_KINDS and _failures_changed(row, (before or {}).get("status")):
        changes.publish(changes.ClusterFailing(row.KIND, row.namespace, row.name))
    return "created" if before is None else "updated"


def _failures_changed(placement, before: dict | None) -> bool:
    """Whether the hub's placement status reports other failing clusters (or
    reasons) than before: the pages of its mirrored runs show them at once,
    though the runs' own status may not change."""
    def failing(status):
        found = placement_status_failures(status, placement=placement.name, namespace=placement.namespace)
        return {cluster: failure.text for cluster, failure in found.items()}
    return failing(placement.status) != failing(before)


def _strategy_policies_sync(hub_kind: HubKind, strategy, obj: dict | None) -> None:
    """A hub's strategy brings its approval policy annotation along. The hub
    never validated it: a malformed one governs nothing (and is logged)."""
    problems = approval_policy.problems(obj) if obj is not None else []
    if problems:
        log.warning("%s %s: its approval policy annotation is malformed and ignored: %s", hub_kind.kind,
                    strategy.name, problems[0])
        obj = None
    strategy_policies_sync(strategy=strategy, kind=kind_of(hub_kind.model), manifest=obj)


def _fill(row, hub_kind: HubKind, obj: dict, connection: HubConnection, where: str) -> None:
    meta = obj.get("metadata") or {}
    row.uid = _uuid(meta.get("uid")) or row.uid
    row.generation = int(meta.get("generation") or 1)
    # row.resource_version: our hub's own revision, taken by save(); the
    # other hub's version is the mark's hub_resource_version.
    row.creation_timestamp = _time(meta.get("creationTimestamp")) or row.creation_timestamp or clock.now()
    row.labels = meta.get("labels") or {}
    row.annotations = meta.get("annotations") or {}
    row.finalizers = meta.get("finalizers") or []
    row.spec = obj.get("spec") or {}
    row.status = obj.get("status") or {}
    if hub_kind.kind in RUN_KINDS:
        row.active = run_is_active(row.status)
        row.finished_at = None if row.active else (row.finished_at or run_finished_time(row.status) or clock.now())
        row.wake_at = None  # the hub's controller drives mirrored runs, not our engine
    if hub_kind.model in _OWNER:
        row.owner, row.index = _owner_and_index(hub_kind, row, connection, where)


def run_is_active(status: dict) -> bool:
    """Not finished: the engine's rule (no Succeeded condition, not failed to initialize)."""
    conditions = status.get("conditions") or []
    initialized = find_condition(conditions, "Initialized") or {}
    return not (find_condition(conditions, "Succeeded") or initialized.get("status") == "False")


def run_finished_time(status: dict):
    """When a finished run's terminal condition (Succeeded, or Initialized=False) was set."""
    conditions = status.get("conditions") or []
    initialized = find_condition(conditions, "Initialized") or {}
    terminal = find_condition(conditions, "Succeeded") or (initialized if initialized.get("status") == "False" else {})
    try:
        return clock.parse_rfc3339(terminal.get("lastTransitionTime"))
    except (TypeError, ValueError, AttributeError):  # a hub's malformed time: the mirror's own clock
        return None


def _owner_and_index(hub_kind: HubKind, row, connection: HubConnection, where: str):
    owner_model, index_label = _OWNER[hub_kind.model]
    parent = row.labels.get(L.PARENT_CRP, "")
    owner = (owner_model.objects.filter(namespace=row.namespace, name=parent)
             .filter(Exists(marks_of(owner_model).filter(connection=connection))).first())
    if owner is None:
        raise Deferred(f"{where}: its placement {parent!r} is not mirrored yet")
    return owner, parse_unsigned(row.labels.get(index_label, "")) or 0


def _uuid(text) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(text))
    except ValueError:
        return None


def _time(text):
    try:
        return clock.parse_rfc3339(text)
    except (TypeError, ValueError):
        return None


def mirror_delete(connection: HubConnection, hub_kind: HubKind, namespace: str, name: str, *,
                  record_events: bool = True) -> bool:
    """Remove the mirror of an object the hub deleted. Returns whether there was one."""
    mark = MirroredObject.objects.filter(connection=connection, kind=hub_kind.kind, namespace=namespace,
                                         name=name).first()
    if mark is None:
        return False
    row = hub_kind.model.objects.filter(namespace=namespace, name=name).first()
    if row is not None:
        if hub_kind.kind in PLACEMENT_KINDS:
            _unmark_children(row)
        if record_events and hub_kind.kind in RUN_KINDS + APPROVAL_KINDS:
            _event(connection, row, m.Event.Action.DELETED)
        if hub_kind.kind in STRATEGY_KINDS:
            _strategy_policies_sync(hub_kind, row, None)
        _announce(row)
        row.delete()  # a placement takes its snapshots with it, as the hub's GC does
    mark.delete()
    return True


def _unmark_children(placement) -> None:
    for child_model in (m.ClusterSchedulingPolicySnapshot, m.ClusterResourceSnapshot,
                        m.SchedulingPolicySnapshot, m.ResourceSnapshot):
        if _OWNER[child_model][0] is type(placement):
            names = child_model.objects.filter(owner=placement).values_list("name", flat=True)
            MirroredObject.objects.filter(kind=child_model.KIND, namespace=placement.namespace,
                                          name__in=list(names)).delete()


def mirror_replace_all(connection: HubConnection, hub_kind: HubKind, items: list[dict], *,
                       deferred: dict | None = None) -> list[str]:
    """Make the mirror of a kind exactly the listed items: upsert each, delete
    the mirrors the hub no longer has. Returns warning lines; objects waiting
    for their placement go into `deferred` ({(kind, namespace, name): object}) instead."""
    warnings, seen = [], set()
    known = _known(hub_kind, items)
    for obj in items:
        seen.add(address_of(hub_kind, obj))
        try:
            mirror_upsert(connection, hub_kind, obj, known=known)
        except Deferred:
            if deferred is None:
                raise
            deferred[(hub_kind.kind, *address_of(hub_kind, obj))] = obj
        except Skipped as exc:
            warnings.append(str(exc))
    held = MirroredObject.objects.filter(connection=connection, kind=hub_kind.kind).values_list("namespace", "name")
    for namespace, name in list(held):
        if (namespace, name) not in seen:
            mirror_delete(connection, hub_kind, namespace, name)
    return warnings


def _known(hub_kind: HubKind, items: list[dict]) -> dict:
    """{(namespace, name): (mark, row)} for the listed objects, in two queries."""
    names = {address_of(hub_kind, obj)[1] for obj in items}
    marks = {(mk.namespace, mk.name): mk
             for mk in MirroredObject.objects.filter(kind=hub_kind.kind, name__in=names)}
    rows = {(r.namespace, r.name): r for r in hub_kind.model.objects.filter(name__in=names)}
    return {key: (marks.get(key), rows.get(key)) for key in marks.keys() | rows.keys()}


def mirror_forget(connection: HubConnection) -> int:
    """Delete every row mirrored from this hub (no Events). Returns how many."""
    count = 0
    for hub_kind in reversed(MIRRORED_KINDS):  # snapshots before their placements
        for namespace, name in list(MirroredObject.objects.filter(connection=connection, kind=hub_kind.kind)
                                    .values_list("namespace", "name")):
            count += mirror_delete(connection, hub_kind, namespace, name, record_events=False)
    return count


def _announce(row) -> None:
    """Say a mirrored run or approval request changed: pages showing it are
    pushed after commit exactly as for our own runs (the engine leaves it to
    its hub)."""
    if row.KIND in RUN_KINDS:
        changes.publish(changes.RunChanged.of(row, changes.Origin.HUB))
    elif row.KIND in APPROVAL_KINDS:
        changes.publish(changes.ApprovalRequestChanged.of(row, changes.Origin.HUB))


# Timeline and audit rows ---------------------------------------------------------


def _event(connection: HubConnection, row, action: str, *, time=None, **extra) -> m.Event:
    run = row.name if row.KIND in RUN_KINDS else (row.spec or {}).get("parentStageRollout", "")
    details = {"hub": connection.name, **extra.pop("details", {})}
    return record(actor=connection.actor, action=action, kind_name=row.KIND, name=row.name,
                  namespace=row.namespace, run=run, time=time, details=details, **extra)


def _record_change(connection: HubConnection, hub_kind: HubKind, row, before: dict | None) -> None:
    if hub_kind.kind in RUN_KINDS:
        _record_run(connection, row, before)
    elif hub_kind.kind in APPROVAL_KINDS:
        _record_approval(connection, row, before)


def _record_run(connection: HubConnection, run, before: dict | None) -> None:
    if before is None:
        _event(connection, run, m.Event.Action.CREATED, time=run.creation_timestamp)
    elif before["spec"].get("state") != (run.spec or {}).get("state"):
        _event(connection, run, m.Event.Action.STATE_CHANGED,
               details={"changes": {"spec.state": [before["spec"].get("state"), run.spec.get("state")]}})
    record_condition_transitions(connection, run, (before or {}).get("status") or {}, run.status or {})


def record_condition_transitions(connection: HubConnection, run, before: dict, after: dict) -> int:
    """One Event per run condition whose status or reason changed, as the
    engine writes for our own runs, timed by the hub's lastTransitionTime
    when the status changed (so a first mirror rebuilds the whole timeline)."""

    def when(cond: dict, status_changed: bool):
        return (_time(cond.get("lastTransitionTime")) if status_changed else None) or clock.now()

    rows = transition_events(run, before, after, actor=connection.actor, when=when,
                             details={"hub": connection.name})
    m.Event.objects.bulk_create(sorted(rows, key=lambda e: e.time))
    return len(rows)


def _record_approval(connection: HubConnection, request, before: dict | None) -> None:
    if before is None:
        _event(connection, request, m.Event.Action.CREATED, time=request.creation_timestamp)
    old = (before or {}).get("status", {}).get("conditions")
    new = (request.status or {}).get("conditions")
    approved = find_condition(new, "Approved") or {}
    if approved.get("status") == "True" and (find_condition(old, "Approved") or {}).get("status") != "True":
        already = m.Event.objects.filter(action=m.Event.Action.APPROVED, object_kind=request.KIND,
                                         object_namespace=request.namespace, object_name=request.name).exists()
        if not already:  # approved on the hub itself (kubectl): we know the message, not the person
            _event(connection, request, m.Event.Action.APPROVED, time=_time(approved.get("lastTransitionTime")),
                   reason=approved.get("reason", ""), message=approved.get("message", ""))
    accepted = find_condition(new, "ApprovalAccepted") or {}
    if accepted.get("status") == "True" and (find_condition(old, "ApprovalAccepted") or {}).get("status") != "True":
        _event(connection, request, m.Event.Action.CONDITION, time=_time(accepted.get("lastTransitionTime")),
               reason=accepted.get("reason", ""), message=accepted.get("message", ""),
               details={"scope": "approvalRequest", "type": "ApprovalAccepted", "status": "True",
                        "approvedMessage": approved.get("message", "")})
