"""A placement's past runs: what the ETA learns from, the history page and
the comparison of a run's stages with the runs before it. Every read is a
fixed number of queries: past runs of many placements come in one query
per family (a window over each placement's newest runs), never one per run.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import F, Q
from django.db.models.expressions import Window
from django.db.models.fields.json import KT
from django.db.models.functions import RowNumber

from rollouts import clock
from rollouts import models as m
from rollouts.controllers.family import FAMILIES

from .common import Memo, family_for
from .comparison import COMPARE_RUNS, StageComparison, stage_comparison
from .eta import Eta, Learned, estimate_learned, learn
from .records import ClusterSpan, RunRecord, run_record
from .runs import RunRow, RunState, active_runs, run_rows, run_state

ETA_RUNS = 5  # finished runs of a placement the ETA learns from
HISTORY_RUNS = 30  # runs the history page lists
# A stopped or not-yet-started run has no honest estimate: say why instead.
_NO_ESTIMATE = {
    RunState.STOPPED: "no estimate while stopped",
    RunState.STOPPING: "no estimate while stopping",
    RunState.INITIALIZED: "no estimate until it starts",
}


def _ranked(family, keys: set[tuple[str, str]], limit: int, **filters):
    """The newest `limit` runs of each (namespace, placement) in `keys`
    (filtered by `filters`), newest first, in one query."""
    match = Q()
    for namespace, placement in keys:
        match |= Q(namespace=namespace, spec__placementName=placement)
    newest = [F("creation_timestamp").desc(), F("pk").desc()]
    if len(keys) == 1:  # a run page's: a plain LIMIT, without the window (a 1,000-cluster push reads it each time)
        return (family.run.objects.filter(match, **filters).annotate(placement=KT("spec__placementName"))
                .order_by(*newest)[:limit])
    return (family.run.objects.filter(match, **filters)
            .annotate(placement=KT("spec__placementName"),
                      rank=Window(RowNumber(), partition_by=[F("namespace"), KT("spec__placementName")],
                                  order_by=newest))
            .filter(rank__lte=limit).order_by(*newest))


# What the ETA learned from a placement's finished runs, by their mark
# (UpdateRunQuerySet.past_runs_marks): they change only when a run finishes
# (or one is rewritten or deleted), so a run page's push (or the overview's)
# reads five 1,000-cluster statuses then, not every time.
_BY_MARK = Memo(256)


def past_learned(family, keys: set[tuple[str, str]]) -> dict[tuple[str, str], tuple[Learned, int]]:
    """{(namespace, placement): (what its last ETA_RUNS finished runs teach,
    how many there were)}. One small query (the mark of each placement's
    finished runs) when all is known already; one more, their newest runs,
    for the placements whose finished runs changed."""
    if not keys:
        return {}
    marks = family.run.objects.past_runs_marks(keys)
    known = {key: _BY_MARK.known((family.run.KIND, *key, marks[key])) for key in marks}
    if all(value is not None for value in known.values()):
        return known
    found = _past_learned(family, set(marks))
    for key, mark in marks.items():
        _BY_MARK.get((family.run.KIND, *key, mark), lambda key=key: found.get(key) or (learn([]), 0))
    return found


def _past_learned(family, keys: set[tuple[str, str]]) -> dict[tuple[str, str], tuple[Learned, int]]:
    """What the newest ETA_RUNS finished runs of each placement teach, in one query."""
    records: dict[tuple[str, str], list[RunRecord]] = {}
    for namespace, placement, name, spec, status in _ranked(family, keys, ETA_RUNS, active=False).values_list(
            "namespace", "placement", "name", "spec", "status"):
        records.setdefault((namespace, placement), []).append(run_record(name, spec, status))
    return {key: (learn(runs), len(runs)) for key, runs in records.items()}


def _eta(run, past: tuple[Learned, int] | None, now: datetime, spans=None) -> Eta:
    spec = run.spec or {}
    reason = _NO_ESTIMATE.get(run_state(spec.get("state"), (run.status or {}).get("conditions")))
    if reason:
        return Eta(None, reason=reason)
    record = run_record(run.name, spec, run.status, spans)
    if not record.stages or past is None:
        return Eta(None)
    return estimate_learned(record, past[0], now, basis=past[1])


def run_eta(run, spans: list[tuple[ClusterSpan, ...]] | None = None) -> Eta | None:
    """The time an active run has left (None for a finished run). One query
    (two when its placement's finished runs changed since last asked).
    `spans`: its stages' clusters, when the caller parsed them (the run page's Timeline)."""
    return run_etas([run], {(run.KIND, run.namespace, run.name): spans}).get((run.KIND, run.namespace, run.name))


def run_etas(runs, spans: dict | None = None) -> dict[tuple[str, str, str], Eta]:
    """{(kind, namespace, name): Eta} of the active runs among `runs`: one
    small query per family that has one, however many runs and placements (and
    one more when their placements' finished runs changed: past_learned)."""
    etas, now, spans = {}, clock.now(), spans or {}
    for family in FAMILIES:
        mine = [r for r in runs if isinstance(r, family.run) and r.active]
        keys = {(r.namespace, (r.spec or {}).get("placementName", "")) for r in mine}
        past = past_learned(family, keys)
        for run in mine:
            key, name = (run.namespace, (run.spec or {}).get("placementName", "")), (run.KIND, run.namespace, run.name)
            etas[name] = _eta(run, past.get(key), now, spans.get(name))
    return etas


def runs_active_with_eta() -> list[RunRow]:
    """The overview's active runs (selectors.runs.runs_active), each with its
    Eta: one query per family for the runs, one for their placements' past
    runs, one for their hubs."""
    runs = active_runs()
    etas = run_etas(runs)
    rows = run_rows(runs)
    for run, row in zip(runs, rows, strict=True):
        row.eta = etas.get((run.KIND, run.namespace, run.name))
    return sorted(rows, key=lambda r: r.created, reverse=True)


# Approvals: who approved each gate ------------------------------------------------


def gate_approvers(kind_name: str, namespace: str, names: list[str]) -> dict[str, list[str]]:
    """{approval request name: the people who approved it, in order}, one
    query (every vote of a multi-approver policy is an approval Event)."""
    if not names:
        return {}
    rows = (m.Event.objects.filter(action=m.Event.Action.APPROVED, object_kind=kind_name,
                                   object_namespace=namespace, object_name__in=names)
            .order_by("id").values_list("object_name", "actor"))
    found: dict[str, list[str]] = {}
    for name, actor in rows:
        if actor not in found.setdefault(name, []):
            found[name].append(actor)
    return found


def approval_names(records: list[RunRecord]) -> list[str]:
    return [g.approval_name for r in records for s in r.stages for g in s.gates if g.approval_name]


# The history page ------------------------------------------------------------------


@dataclass(frozen=True)
class GateRow:
    stage: str
    when: str  # "before" or "after"
    approvers: list[str]
    waited: float | None  # seconds from the request to its acceptance
    open: bool  # still waiting


@dataclass
class HistoryRow:
    run: RunRow
    record: RunRecord
    rollback: bool = False  # its snapshot index is lower than the run's before it
    gates: list[GateRow] = field(default_factory=list)
    stages: list[StageComparison] = field(default_factory=list)

    @property
    def slow(self) -> list[StageComparison]:
        return [s for s in self.stages if s.slow]


@dataclass
class PlacementHistory:
    name: str
    namespace: str
    rows: list[HistoryRow]  # newest first
    more: bool  # older runs exist than the page lists


def _gate_rows(record: RunRecord, approvers: dict[str, list[str]]) -> list[GateRow]:
    return [GateRow(g.stage, g.when, approvers.get(g.approval_name, []), g.seconds, g.ended is None)
            for s in record.stages for g in s.gates if g.type == "Approval" and g.started]


def placement_history(*, name: str, namespace: str = "") -> PlacementHistory | None:
    """The placement's runs, newest first (at most HISTORY_RUNS): snapshot,
    outcome, duration, who approved each gate, rollbacks marked, and each
    run's stages against the COMPARE_RUNS finished runs before it; None when
    there is no such placement; an active run's row carries its ETA.
    Queries: the placement, the runs (HISTORY_RUNS + COMPARE_RUNS newest,
    one query), their hubs, the approval Events, and with an active run the
    ETA's (run_etas): four to six, for any number of runs."""
    family = family_for(namespace)
    if not family.placement.objects.filter(name=name, namespace=namespace).exists():
        return None
    runs = list(_ranked(family, {(namespace, name)}, HISTORY_RUNS + COMPARE_RUNS))
    records = [run_record(r.name, r.spec, r.status) for r in runs]
    approvers = gate_approvers(family.approval_request.KIND, namespace, approval_names(records[:HISTORY_RUNS]))
    etas = run_etas(runs[:HISTORY_RUNS])
    rows = []
    for i, (row, record) in enumerate(zip(run_rows(runs[:HISTORY_RUNS]), records, strict=False)):
        row.eta = etas.get((family.run.KIND, row.namespace, row.name))
        before = records[i + 1] if i + 1 < len(records) else None
        finished_before = [r for r, run in zip(records[i + 1:], runs[i + 1:], strict=False) if not run.active]
        rows.append(HistoryRow(
            row, record,
            rollback=bool(before and record.snapshot_index is not None and before.snapshot_index is not None
                          and record.snapshot_index < before.snapshot_index),
            gates=_gate_rows(record, approvers), stages=stage_comparison(record, finished_before)))
    return PlacementHistory(name, namespace, rows, more=len(runs) > HISTORY_RUNS)


def previous_records(run, limit: int = COMPARE_RUNS) -> list[RunRecord]:
    """The placement's finished runs created before `run`, newest first (one query)."""
    family = family_for(run.namespace)
    placement = (run.spec or {}).get("placementName", "")
    earlier = Q(creation_timestamp__lt=run.creation_timestamp) | Q(creation_timestamp=run.creation_timestamp,
                                                                      pk__lt=run.pk)
    rows = (family.run.objects.filter(earlier, namespace=run.namespace, spec__placementName=placement, active=False)
            .order_by("-creation_timestamp", "-pk").values_list("name", "spec", "status")[:limit])
    return [run_record(name, spec, status) for name, spec, status in rows]
