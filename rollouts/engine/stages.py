"""Stage computation (staged-update-semantics.md §4.4) and the small pure
helpers the rest of the state machine shares: errors, defaults, durations."""

import re

from rollouts.api.durations import parse_duration
from rollouts.api.labels import selector_matches, selector_problem
from rollouts.controllers import labels as L

CLIENT = "failed to process the request due to a client error: "
INTERNAL = "unexpected behavior which cannot be handled by the controller: "
PREFIX = "cannot continue the updateRun: "
VALIDATE = "failed to validate the updateRun: "


class Terminal(Exception):
    """Initialization or validation can never succeed: the run fails for good."""

    def __init__(self, message: str, *, user: bool = True):
        super().__init__(PREFIX + VALIDATE + (CLIENT if user else INTERNAL) + message)


class Retry(Exception):
    """A transient condition (the scheduler has not caught up): try again later."""


class Abort(Exception):
    """Execution cannot go on: the run and its current stage fail."""

    def __init__(self, message: str, *, user: bool = False):
        super().__init__(PREFIX + (CLIENT if user else INTERNAL) + message)


_ATOI = re.compile(r"^[+-]?[0-9]+$")


def wait_seconds(text: str) -> float:
    """A TimedWait's `waitTime` in seconds; an unreadable one counts as 0,
    which initialization refuses ("wait duration <= 0")."""
    try:
        return parse_duration(text)
    except ValueError:
        return 0.0


def atoi(text) -> int | None:
    """Go's strconv.Atoi: optional sign and digits only (`007` is 7, ` 7` is not)."""
    if isinstance(text, str) and _ATOI.match(text):
        return int(text)
    return None


def default_apply_strategy(apply_strategy: dict | None) -> dict:
    strategy = dict(apply_strategy or {})
    strategy.setdefault("type", "ClientSideApply")
    strategy.setdefault("comparisonOption", "PartialComparison")
    strategy.setdefault("whenToApply", "Always")
    strategy.setdefault("whenToTakeOver", "Always")
    if strategy["type"] == "ServerSideApply":
        strategy["serverSideApplyConfig"] = {"force": False, **(strategy.get("serverSideApplyConfig") or {})}
    return strategy


def approval_request_name(run: str, stage: str, task_type: str) -> str:
    """After-stage requests keep the tutorial's `<run>-<stage>`; before-stage
    requests use the current `<run>-before-<stage>` (compatibility.md)."""
    return f"{run}-before-{stage}" if task_type == "beforeStage" else f"{run}-{stage}"


def _check_tasks(stage: dict, strategy_name: str) -> None:
    name = stage.get("name")
    before = stage.get("beforeStageTasks") or []
    if len(before) > 1 or any(t.get("type") != "Approval" or t.get("waitTime") for t in before):
        raise Terminal(
            f"the before stage tasks are invalid, updateStrategy: `{strategy_name}`, stage: `{name}`, "
            "only one Approval task without waitTime is allowed"
        )
    after = stage.get("afterStageTasks") or []
    types = [t.get("type") for t in after]
    if len(set(types)) != len(types):
        raise Terminal(
            f"the after stage tasks are invalid, updateStrategy: `{strategy_name}`, stage: `{name}`, "
            f"afterStageTasks cannot have two tasks of the same type: {types[0]}"
        )
    for task in after:
        if task.get("type") == "TimedWait" and wait_seconds(task.get("waitTime") or "") <= 0:
            raise Terminal(
                f"the after stage tasks are invalid, updateStrategy: `{strategy_name}`, stage: `{name}`, "
                f"task {task.get('type')} has wait duration <= 0"
            )


def _stage_clusters(stage: dict, selected: list[str], member_labels: dict) -> list[str]:
    selector = stage.get("labelSelector")
    if selector_problem(selector):
        raise Terminal(f"the stage label selector is invalid, stage: `{stage.get('name')}`: {selector_problem(selector)}")
    return [c for c in selected if c in member_labels and selector_matches(selector, member_labels[c])]


def _sorted(stage: dict, clusters: list[str], member_labels: dict) -> list[str]:
    key = stage.get("sortingLabelKey")
    if not key:
        return sorted(clusters)
    order = {}
    for cluster in clusters:
        value = member_labels[cluster].get(key)
        number = atoi(value)
        if number is None:
            raise Terminal(f"the sorting label `{key}:{value or ''}` on cluster `{cluster}` is not valid")
        order[cluster] = number
    return sorted(clusters, key=lambda c: (order[c], c))


def _task_statuses(run: str, stage: str, tasks: list[dict], task_type: str) -> list[dict]:
    statuses = []
    for task in tasks:
        entry = {"type": task.get("type")}
        if task.get("type") == "Approval":
            entry["approvalRequestName"] = approval_request_name(run, stage, task_type)
        statuses.append(entry)
    return statuses


def compute_stages(run: str, strategy_name: str, strategy: dict, selected: list[str], member_labels: dict) -> list[dict]:
    """One status entry per strategy stage with its clusters in update order.

    Raises Terminal for invalid tasks or selectors, a cluster in two stages,
    a bad sorting label, or a scheduled cluster in no stage."""
    placed: dict[str, str] = {}
    stages = []
    for stage in strategy.get("stages") or []:
        _check_tasks(stage, strategy_name)
        clusters = _stage_clusters(stage, selected, member_labels)
        for cluster in clusters:
            if cluster in placed:
                raise Terminal(f"cluster `{cluster}` appears in more than one stages")
            placed[cluster] = stage.get("name")
        entry = {"stageName": stage.get("name"), "clusters": [{"clusterName": c} for c in _sorted(stage, clusters, member_labels)]}
        if stage.get("beforeStageTasks"):
            entry["beforeStageTaskStatus"] = _task_statuses(run, stage["name"], stage["beforeStageTasks"], "beforeStage")
        if stage.get("afterStageTasks"):
            entry["afterStageTaskStatus"] = _task_statuses(run, stage["name"], stage["afterStageTasks"], "afterStage")
        stages.append(entry)
    missing = sorted(c for c in selected if c not in placed)
    if missing:
        raise Terminal(
            f"some clusters are not placed in any stage, total {len(missing)}, showing up to 10: {', '.join(missing[:10])}"
        )
    return stages


def deletion_stage(to_delete: list[str]) -> dict:
    return {"stageName": L.DELETE_STAGE_NAME, "clusters": [{"clusterName": c} for c in sorted(to_delete)]}


def max_concurrency(value, cluster_count: int) -> int:
    """Effective maxConcurrency: an integer, or floor(pct × clusters), at least 1."""
    if value is None:
        return 1
    if isinstance(value, int) and not isinstance(value, bool):
        return max(value, 1)
    text = str(value)
    if text.endswith("%"):
        return max(int(text[:-1]) * cluster_count // 100, 1)
    number = atoi(text)
    return max(number or 1, 1)


def request_gates(status: dict, name: str, *, run: str = "", stage: str = "") -> list[tuple[str, str]]:
    """The gates (stage, "before" | "after") approval request `name` stands
    for, read from what the run recorded: the approvalRequestName of each
    stage's before- and after-stage task. Never from the request's labels,
    which anyone who may edit the request can change.

    A name the run has not recorded (it is not initialized yet, or a hub's
    status has not caught up) is read by the deterministic names with the
    request's immutable spec.targetStage (`stage`): `<run>-before-<stage>`
    for a before-stage gate, `<run>-<stage>` (ours, the tutorial's) or
    `<run>-after-<stage>` (KubeFleet's current) for an after-stage one. []
    when `name` is no gate of the run. Duplicate stage names (not validated,
    as in KubeFleet) can make one request stand for several gates."""
    found = [(entry.get("stageName", ""), gate) for entry in status.get("stagesStatus") or []
             for key, gate in (("beforeStageTaskStatus", "before"), ("afterStageTaskStatus", "after"))
             if any(t.get("approvalRequestName") == name for t in entry.get(key) or [])]
    if found or not stage:
        return found
    if name == f"{run}-before-{stage}":
        return [(stage, "before")]
    if name in (f"{run}-{stage}", f"{run}-after-{stage}"):
        return [(stage, "after")]
    return []
