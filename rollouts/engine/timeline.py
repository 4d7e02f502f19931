"""Condition changes of a run as Event rows: the timeline's source."""

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
        key = tuple(sorted((k, str(v)) for k, v in where.items()))
        for cond in conditions:
            out[(key, cond.get("type"))] = (where, cond)
    return out


def transition_events(run, before: dict, after: dict, *, actor: str, when, details: dict | None = None,
                      make=m.Event) -> list:
    """Unsaved Events (or what `make` builds from an Event's fields: Event.row),
    one per condition whose status or reason changed between two run
    statuses. `when(condition, status_changed)` times each; `details` are
    added to every row's."""
    old, new = condition_index(before), condition_index(after)
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
    rows = transition_events(run, before, after, actor=ENGINE, when=lambda cond, changed: now, make=m.Event.row)
    m.Event.objects.append_many(rows)
    return len(rows)
