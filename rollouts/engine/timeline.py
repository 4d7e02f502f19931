"""Condition changes of a run as Event rows: the timeline's source."""

import threading

from rollouts import models as m
from rollouts.services.events import ENGINE


def approval_request_names(status: dict) -> list[str]:
    names = []
    for stage in status.get("stagesStatus") or []:
        for task in (stage.get("beforeStageTaskStatus") or []) + (stage.get("afterStageTaskStatus") or []):
            if task.get("approvalRequestName"):
                names.append(task["approvalRequestName"])
    return names


def _condition_entries(status: dict):
    """(scope details, conditions) for every place a run keeps conditions."""
    yield {"scope": "run"}, status.get("conditions") or []
    stages = [(s, "stage") for s in status.get("stagesStatus") or []]
    if status.get("deletionStageStatus"):
        stages.append((status["deletionStageStatus"], "deletionStage"))
    for stage, scope in stages:
        name = stage.get("stageName", "")
        yield {"scope": scope, "stage": name}, stage.get("conditions") or []
        for cluster in stage.get("clusters") or []:
            yield {"scope": "cluster", "stage": name, "cluster": cluster.get("clusterName")}, cluster.get("conditions") or []
        for key, when in (("beforeStageTaskStatus", "beforeStage"), ("afterStageTaskStatus", "afterStage")):
            for i, task in enumerate(stage.get(key) or []):
                yield ({"scope": "task", "stage": name, "taskType": when, "task": task.get("type"), "index": i},
                       task.get("conditions") or [])


def condition_index(status: dict) -> dict:
    """{(where, type): (where details, condition)} over every condition of a run status."""
    out = {}
    for where, conditions in _condition_entries(status):
        key = tuple(where.items())  # built in one order per scope, so equal places give equal keys
        for cond in conditions:
            out[(key, cond.get("type"))] = (where, cond)
    return out


_engine_last = threading.local()


def _engine_index(status: dict) -> dict:
    """condition_index, remembering the last status it indexed (in this
    thread): the engine's pass "after" is the next pass's "before", the same
    dict, never changed once saved (each pass works on a copy), so an
    advance indexes each status once, not twice."""
    last = getattr(_engine_last, "pair", None)
    if last is not None and last[0] is status:
        return last[1]
    index = condition_index(status)
    _engine_last.pair = (status, index)
    return index


def transition_events(run, before: dict, after: dict, *, actor: str, when, details: dict | None = None,
                      make=m.Event, index=condition_index) -> list:
    """Unsaved Events (or what `make` builds from an Event's fields: Event.row),
    one per condition whose status or reason changed between two run
    statuses. `when(condition, status_changed)` times each; `details` are
    added to every row's. `index`: how a status is indexed (condition_index)."""
    old, new = index(before), index(after)
    rows = []
    for key, (where, cond) in new.items():
        previous = old.get(key, (None, None))[1]
        if previous and (previous.get("status"), previous.get("reason")) == (cond.get("status"), cond.get("reason")):
            continue
        row_details = {**where, "type": cond.get("type"), "status": cond.get("status"), **(details or {})}
        if previous:
            row_details["from"] = {"status": previous.get("status"), "reason": previous.get("reason")}
        status_changed = not previous or previous.get("status") != cond.get("status")
        rows.append(make(time=when(cond, status_changed), actor=actor, action=m.Event.Action.CONDITION,
                            object_kind=run.KIND, object_namespace=run.namespace, object_name=run.name, run=run.name,
                            reason=cond.get("reason", ""), message=cond.get("message", ""), details=row_details))
    return rows


def record_transitions(run, before: dict, after: dict, *, now) -> int:
    """One Event per condition whose status or reason changed in this pass."""
    rows = transition_events(run, before, after, actor=ENGINE, when=lambda cond, changed: now, make=m.Event.row,
                              index=_engine_index)
    m.Event.objects.append_many(rows)
    return len(rows)
