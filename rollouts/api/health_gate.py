"""The health-gate annotation of a strategy: parse and check it.

    metadata:
      annotations:
        fleetui.io/health-gate: |
          stages:
            canary:
              after:
                prometheus:
                  url: http://prometheus.monitoring:9090
                  bearerTokenEnv: FLEET_PROMETHEUS_TOKEN   # optional, FLEET_PROMETHEUS_*
                queries:
                  - name: error-ratio
                    query: max(app_error_ratio{cluster=~"{clusters}"})
                    op: "<"
                    threshold: 0.01
                soak: 5m
                interval: 30s
                mode: evidence        # | auto-approve | auto-reject

Each key under `stages` names a stage of `spec.stages`; `before`/`after`
name its beforeStageTasks/afterStageTasks Approval gate (as in the approval
policy annotation). `{clusters}` in a query becomes a regular expression
matching exactly the stage's cluster names (`member3|member1`).

The credentials are a reference, never a value: the name of an environment
variable of Fleet UI's processes that holds a bearer token, and only one
named FLEET_PROMETHEUS_* (no strategy can send SECRET_KEY anywhere). docs/health-gates.md
has the rules. No database access: validation.py calls `problems()` while
checking an apply; the health-gate service calls `parse()`.
"""

import json
import math
import re
import urllib.parse
from dataclasses import dataclass
from enum import StrEnum

from .approval_policy import (
    GATES,
    annotation_problems,
    annotation_value,
    load_annotation,
)
from .durations import parse_duration

ANNOTATION = "fleetui.io/health-gate"
PLACEHOLDER = "{clusters}"
OPS = ("<", "<=", ">", ">=", "==", "!=")
# Only variables made for it: a strategy naming SECRET_KEY and a URL of its
# author's would otherwise send Fleet UI's secrets there as a bearer token.
TOKEN_ENV_PREFIX = "FLEET_PROMETHEUS_"
_ENV_NAME = re.compile(rf"^{TOKEN_ENV_PREFIX}[A-Z0-9_]{{1,100}}$")
_QUERY_NAME = re.compile(r"^[a-z0-9]([-a-z0-9_.]{0,61}[a-z0-9])?$")
_GATE_FIELDS = ("prometheus", "queries", "soak", "interval", "mode")
_QUERY_FIELDS = ("name", "query", "op", "threshold")
_QUERY_LIMIT = 10
_MIN_INTERVAL, _MAX_SOAK = 0.1, 24 * 3600.0


class Mode(StrEnum):
    EVIDENCE = "evidence"  # shown to the approver; a person decides
    AUTO_APPROVE = "auto-approve"  # approved by system:health-gate once the soak passes healthy
    AUTO_REJECT = "auto-reject"  # rejected (the run stops) once a query fails


@dataclass(frozen=True)
class Query:
    name: str
    query: str  # PromQL, maybe with {clusters}
    op: str
    threshold: float

    def passes(self, value: float) -> bool:
        """Whether one sample is healthy; NaN never is (the caller calls it unknown)."""
        return {"<": value < self.threshold, "<=": value <= self.threshold, ">": value > self.threshold,
                ">=": value >= self.threshold, "==": value == self.threshold,
                "!=": value != self.threshold}[self.op]

    @property
    def rule(self) -> str:
        """`< 0.01`: the healthy side of the threshold."""
        return f"{self.op} {self.threshold:g}"


@dataclass(frozen=True)
class HealthGate:
    stage: str
    gate: str  # before | after
    url: str  # the Prometheus server, no trailing slash
    token_env: str  # "" for none
    queries: tuple[Query, ...]
    soak_seconds: float
    interval_seconds: float
    mode: Mode


def annotation_of(manifest: dict):
    """The health gate annotation's raw value, or None when the manifest has none."""
    return annotation_value(manifest, ANNOTATION)


def problems(manifest: dict) -> list[tuple[str, str]]:
    """(field path, message) for everything wrong with the health gate
    annotation of a strategy manifest; [] when it is fine or absent."""
    return annotation_problems(manifest, ANNOTATION, _check_document)


def parse(manifest: dict) -> list[HealthGate]:
    """The health gates of a strategy manifest whose annotation is valid; []
    without the annotation or when it has problems (a hub's strategy is never
    validated by us: a malformed declaration gates nothing)."""
    raw = annotation_of(manifest)
    if raw is None or problems(manifest):
        return []
    document, _ = load_annotation(raw)
    return [_gate(stage, gate, rule) for stage, gates in document["stages"].items() for gate, rule in gates.items()]


def gate_of(manifest: dict, stage: str, gate: str) -> HealthGate | None:
    """The health gate declared for one gate of the strategy, or None."""
    return next((g for g in parse(manifest) if g.stage == stage and g.gate == gate), None)


def _gate(stage: str, gate: str, rule: dict) -> HealthGate:
    prometheus = rule["prometheus"]
    queries = tuple(Query(q["name"], q["query"], q["op"], float(q["threshold"])) for q in rule["queries"])
    return HealthGate(stage, gate, prometheus["url"].rstrip("/"), prometheus.get("bearerTokenEnv", ""), queries,
                      parse_duration(str(rule["soak"])), parse_duration(str(rule.get("interval", "30s"))),
                      Mode(rule.get("mode", Mode.EVIDENCE)))


# Using a declaration -------------------------------------------------------------


def clusters_regex(clusters: list[str]) -> str:
    """A PromQL regular expression (inside a double-quoted string) matching
    exactly these cluster names: `member3|member1`. Names are DNS labels, so
    only `.` needs escaping (twice: once for the regex, once for the string)."""
    return "|".join(name.replace("\\", "").replace(".", "\\\\.").replace('"', "") for name in clusters)


def expand(query: Query, clusters: list[str]) -> str:
    """The query with `{clusters}` replaced by the stage's cluster names."""
    return query.query.replace(PLACEHOLDER, clusters_regex(clusters))


def graph_url(base_url: str, expr: str, window_seconds: float) -> str:
    """Prometheus' graph page for `expr` over the window: `<prom>/graph?g0.expr=…`."""
    minutes = max(1, math.ceil(window_seconds / 60))
    return f"{base_url}/graph?" + urllib.parse.urlencode(
        {"g0.expr": expr, "g0.tab": "0", "g0.range_input": f"{minutes}m"})


# Checking ------------------------------------------------------------------------


def _check_document(document, path: str, stage_gates: dict, causes: list) -> None:
    if not isinstance(document, dict):
        causes.append((path, "Invalid value: must be an object with `stages`"))
        return
    for key in document:
        if key != "stages":
            causes.append((f"{path}.{key}", "Unsupported value: the health gate has only `stages`"))
    stages = document.get("stages")
    if not isinstance(stages, dict) or not stages:
        causes.append((f"{path}.stages", "Required value: an object keyed by stage name"))
        return
    for stage, gates in stages.items():
        stage_path = f"{path}.stages.{stage}"
        if stage not in stage_gates:
            known = ", ".join(sorted(stage_gates)) or "none"
            causes.append((stage_path, f"Not found: no stage named {json.dumps(str(stage))} in spec.stages "
                                       f"(stages: {known})"))
        elif not isinstance(gates, dict) or not gates:
            causes.append((stage_path, "Invalid value: must be an object with `before` and/or `after`"))
        else:
            for gate, rule in gates.items():
                _check_gate(gate, rule, f"{stage_path}.{gate}", stage_gates[stage], causes)


def _check_gate(gate, rule, path: str, with_approval: set, causes: list) -> None:
    if gate not in GATES:
        causes.append((path, 'Unsupported value: supported values: "before", "after"'))
        return
    if gate not in with_approval:
        causes.append((path, f"Invalid value: the stage has no Approval task in {GATES[gate]}"))
        return
    if not isinstance(rule, dict):
        causes.append((path, "Invalid value: must be an object with prometheus, queries, soak, interval and mode"))
        return
    for key in rule:
        if key not in _GATE_FIELDS:
            causes.append((f"{path}.{key}", f"Unsupported value: supported fields: {_quoted(_GATE_FIELDS)}"))
    _check_prometheus(rule.get("prometheus"), f"{path}.prometheus", causes)
    _check_queries(rule.get("queries"), f"{path}.queries", causes)
    soak = _check_duration(rule, "soak", path, causes, required=True)
    interval = _check_duration(rule, "interval", path, causes, required=False)
    if soak is not None and soak > _MAX_SOAK:
        causes.append((f"{path}.soak", "Invalid value: at most 24h"))
    if interval is not None and interval < _MIN_INTERVAL:
        causes.append((f"{path}.interval", "Invalid value: at least 100ms"))
    if rule.get("mode", Mode.EVIDENCE) not in set(Mode):
        causes.append((f"{path}.mode", f"Unsupported value: supported values: {_quoted(tuple(Mode))}"))


def _check_prometheus(prometheus, path: str, causes: list) -> None:
    if not isinstance(prometheus, dict):
        causes.append((path, "Required value: an object with `url` (and `bearerTokenEnv`)"))
        return
    for key in prometheus:
        if key not in ("url", "bearerTokenEnv"):
            causes.append((f"{path}.{key}", 'Unsupported value: supported fields: "url", "bearerTokenEnv"'))
    url = prometheus.get("url")
    parts = urllib.parse.urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.username:
        causes.append((f"{path}.url", "Invalid value: must be an http:// or https:// URL without credentials or "
                                      "query, e.g. http://prometheus.monitoring:9090"))
    token_env = prometheus.get("bearerTokenEnv", "")
    if not isinstance(token_env, str) or (token_env and not _ENV_NAME.match(token_env)):
        causes.append((f"{path}.bearerTokenEnv", "Invalid value: must be the name of an environment variable "
                                                 f"starting with {TOKEN_ENV_PREFIX} that holds the bearer token "
                                                 "(never the token itself), e.g. FLEET_PROMETHEUS_TOKEN"))


def _check_queries(queries, path: str, causes: list) -> None:
    if not isinstance(queries, list) or not queries or len(queries) > _QUERY_LIMIT:
        causes.append((path, f"Required value: a list of 1 to {_QUERY_LIMIT} queries"))
        return
    names = set()
    for index, query in enumerate(queries):
        where = f"{path}[{index}]"
        if not isinstance(query, dict):
            causes.append((where, "Invalid value: must be an object with name, query, op and threshold"))
            continue
        for key in query:
            if key not in _QUERY_FIELDS:
                causes.append((f"{where}.{key}", f"Unsupported value: supported fields: {_quoted(_QUERY_FIELDS)}"))
        name = query.get("name")
        if not isinstance(name, str) or not _QUERY_NAME.match(name):
            causes.append((f"{where}.name", "Invalid value: a short lowercase name, e.g. error-ratio"))
        elif name in names:
            causes.append((f"{where}.name", f"Duplicate value: {json.dumps(name)}"))
        names.add(name)
        promql = query.get("query")
        if not isinstance(promql, str) or not promql.strip() or len(promql) > 4000:
            causes.append((f"{where}.query", "Required value: a PromQL expression (at most 4000 characters)"))
        if query.get("op") not in OPS:
            causes.append((f"{where}.op", f"Unsupported value: supported values: {_quoted(OPS)}"))
        threshold = query.get("threshold")
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not math.isfinite(threshold):
            causes.append((f"{where}.threshold", "Invalid value: must be a number"))


def _check_duration(rule: dict, key: str, path: str, causes: list, *, required: bool) -> float | None:
    if key not in rule:
        if required:
            causes.append((f"{path}.{key}", "Required value: a duration such as 5m or 30s"))
        return None
    try:
        seconds = parse_duration(str(rule[key]))
    except ValueError:
        causes.append((f"{path}.{key}", f"Invalid value: {json.dumps(str(rule[key]))} is not a duration such as "
                                        "5m or 30s"))
        return None
    return seconds


def _quoted(values: tuple) -> str:
    return ", ".join(json.dumps(str(v)) for v in values)
