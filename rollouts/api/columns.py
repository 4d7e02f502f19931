"""The columns of each kind's table, for `fleet get` and the API's Table
output: a fleet kind's are its CRD's additionalPrinterColumns (api.crds), with
the seed tutorial's legacy changes (compatibility.md, docs/kinds.md); a core
kind's are kubectl's own; any other kind has only Age.

A cell is the raw value as the API server's Table holds it: text, and for a
`date` column an RFC 3339 time (a client shows its age).
"""

from collections.abc import Callable
from dataclasses import dataclass, replace

from rollouts import clock
from rollouts.members import is_simulated

from . import crds, jsonpath
from .kinds import Kind

CREATED = ".metadata.creationTimestamp"


@dataclass(frozen=True)
class Column:
    """One column: `value(obj, manifest)` gives its cell for a stored object
    and its printed() manifest."""

    name: str  # as the CRD spells it ("Update-Run"); tables print it upper-cased
    type: str  # string, integer, number, boolean or date
    priority: int  # > 0: only with -o wide
    json_path: str  # "" for a column of Fleet UI's own
    value: Callable[[object, dict], str]

    @property
    def header(self) -> str:
        return self.name.upper()

    @property
    def wide(self) -> bool:
        return self.priority > 0


def printed(obj) -> dict:
    """What printer columns read, from the row alone (to_manifest would load
    each snapshot's owner: a query per row)."""
    return {
        "metadata": {"name": obj.name, "generation": getattr(obj, "generation", None),
                     "creationTimestamp": clock.rfc3339(obj.creation_timestamp)},
        "spec": getattr(obj, "spec", None) or {},
        "status": getattr(obj, "status", None) or {},
    }  # fmt: skip


def _crd_column(column: crds.PrinterColumn) -> Column:
    path = column.json_path
    return Column(column.name, column.type, column.priority, path, lambda _o, man: jsonpath.cell(man, path))


def _own(name: str, value: Callable[[object], str], *, priority: int = 0) -> Column:
    return Column(name, "string", priority, "", lambda obj, _man: value(obj))


def _age() -> Column:
    return Column("Age", "date", 0, CREATED, lambda obj, _man: clock.rfc3339(obj.creation_timestamp) or "")


# --- the tutorial's legacy columns ------------------------------------------------------


def _legacy_run(column: Column) -> list[Column]:
    # The tutorial's csur table has no PROGRESSING; -o wide adds it.
    return [replace(column, priority=1) if column.name == "Progressing" else column]


def _legacy_approval(column: Column) -> list[Column]:
    # The tutorial shows APPROVALACCEPTED, which the current CRD dropped.
    if column.name != "Approved":
        return [column]
    return [column, _own("ApprovalAccepted", lambda o: o.condition_status("ApprovalAccepted"))]


def _legacy_member(column: Column) -> list[Column]:
    # Simulated members join at once and have no agent or usage: the
    # tutorial's JOINED SIMULATED AGE stay; the CRD's other columns are -o wide.
    if column.name == "Joined":
        joined = _own("Joined", lambda o: o.condition_status("Joined") or "True")
        return [joined, _own("Simulated", lambda o: "True" if is_simulated(o) else "False")]
    return [column if column.json_path == CREATED else replace(column, priority=max(column.priority, 1))]


_LEGACY = {
    "ClusterStagedUpdateRun": _legacy_run,
    "StagedUpdateRun": _legacy_run,
    "ClusterApprovalRequest": _legacy_approval,
    "ApprovalRequest": _legacy_approval,
    "MemberCluster": _legacy_member,
}

# --- core kinds: kubectl's columns ------------------------------------------------------


def _data_count(*fields: str) -> Callable[[object], str]:
    return lambda obj: str(sum(len(obj.content.get(f) or {}) for f in fields))


_CORE = {
    "ConfigMap": lambda: [_own("Data", _data_count("data", "binaryData"))],
    "Secret": lambda: [
        _own("Type", lambda o: str(o.content.get("type", "Opaque"))),
        _own("Data", _data_count("data", "stringData")),
    ],
    "Namespace": lambda: [_own("Status", lambda o: "Active")],
}


def columns_for(kind: Kind) -> list[Column]:
    """The kind's columns after NAME, Age among them."""
    printer = crds.printer_columns(kind.group, kind.kind, kind.version) if kind.is_fleet else ()
    if not printer:
        own = _CORE.get(kind.kind, list)() if kind.group == "" else []
        return [*own, _age()]
    legacy = _LEGACY.get(kind.kind, lambda c: [c])
    columns = [c for column in printer for c in legacy(_crd_column(column))]
    return columns if any(c.json_path == CREATED for c in columns) else [*columns, _age()]
