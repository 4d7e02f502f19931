"""KubeFleet's vendored CRDs (api/crds/*.yaml): the one source of truth for
each fleet kind's schema, CEL rules, printer columns and short names.

The files are 1.2 MB of YAML: they are parsed once, on first use (not at
import, so `manage.py` starts as fast as before), with libyaml's CSafeLoader
(about 0.15 s for all of them). Everything returned is shared: callers must
not mutate it.

Public API:
- crd_for(group, kind) -> Crd | None
- schema_for(group, kind, version) -> the openAPIV3Schema dict
- printer_columns(group, kind, version) -> list of PrinterColumn
- cel_rules(group, kind, version) -> list of CelRule (path, rule, message)
- all_crds() -> every vendored Crd
"""

import functools
from dataclasses import dataclass
from pathlib import Path

import yaml

CRD_DIR = Path(__file__).resolve().parent / "crds"

# CSafeLoader needs libyaml; the pure-Python loader gives the same result, slower.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class PrinterColumn:
    """One additionalPrinterColumn: `priority` > 0 shows only with -o wide."""

    name: str
    type: str
    json_path: str
    priority: int = 0
    description: str = ""
    format: str = ""


@dataclass(frozen=True)
class CelRule:
    """One x-kubernetes-validations entry and where it sits in the schema.

    `path` is a tuple of steps from the object's root: a field name, or "[*]"
    for every item of a list (and "{*}" for every value of a map)."""

    path: tuple[str, ...]
    rule: str
    message: str

    @property
    def is_transition(self) -> bool:
        """A transition rule compares with the stored object (only on update)."""
        return "oldSelf" in self.rule

    @property
    def shown_path(self) -> str:
        """The path as `spec.stages[*].afterStageTasks` ("" for the root)."""
        text = ""
        for step in self.path:
            text += step if step.startswith(("[", "{")) else (f".{step}" if text else step)
        return text


@dataclass(frozen=True)
class CrdVersion:
    name: str
    served: bool
    storage: bool
    schema: dict
    printer_columns: tuple[PrinterColumn, ...]
    subresources: dict
    cel_rules: tuple[CelRule, ...]


@dataclass(frozen=True)
class Crd:
    """What one CRD declares about its kind."""

    group: str
    kind: str
    plural: str
    singular: str
    list_kind: str
    short_names: tuple[str, ...]
    categories: tuple[str, ...]
    scope: str  # "Cluster" or "Namespaced"
    versions: dict[str, CrdVersion]
    source: dict  # the whole CRD document, as vendored

    @property
    def namespaced(self) -> bool:
        return self.scope == "Namespaced"

    @property
    def served_versions(self) -> tuple[str, ...]:
        return tuple(name for name, version in self.versions.items() if version.served)

    @property
    def storage_version(self) -> str:
        return next(name for name, version in self.versions.items() if version.storage)

    def version(self, name: str | None) -> CrdVersion:
        """The named served version; the storage version when name is None or unknown."""
        found = self.versions.get(name) if name else None
        return found if found and found.served else self.versions[self.storage_version]


# --- reading the files ------------------------------------------------------------------


def _collect_rules(schema: dict, path: tuple[str, ...], out: list[CelRule]) -> None:
    """Every x-kubernetes-validations rule under `schema`, with its path."""
    if not isinstance(schema, dict):
        return
    for entry in schema.get("x-kubernetes-validations") or ():
        out.append(CelRule(path, entry.get("rule", ""), entry.get("message", "")))
    for name, sub in (schema.get("properties") or {}).items():
        _collect_rules(sub, (*path, name), out)
    if isinstance(schema.get("items"), dict):
        _collect_rules(schema["items"], (*path, "[*]"), out)
    if isinstance(schema.get("additionalProperties"), dict):
        _collect_rules(schema["additionalProperties"], (*path, "{*}"), out)


def _printer_column(raw: dict) -> PrinterColumn:
    return PrinterColumn(
        name=raw["name"],
        type=raw.get("type", "string"),
        json_path=raw["jsonPath"],
        priority=int(raw.get("priority", 0)),
        description=raw.get("description", ""),
        format=raw.get("format", ""),
    )


def _version(raw: dict) -> CrdVersion:
    schema = (raw.get("schema") or {}).get("openAPIV3Schema") or {}
    rules: list[CelRule] = []
    _collect_rules(schema, (), rules)
    return CrdVersion(
        name=raw["name"],
        served=bool(raw.get("served")),
        storage=bool(raw.get("storage")),
        schema=schema,
        printer_columns=tuple(map(_printer_column, raw.get("additionalPrinterColumns") or ())),
        subresources=raw.get("subresources") or {},
        cel_rules=tuple(rules),
    )


def _crd(document: dict) -> Crd:
    spec, names = document["spec"], document["spec"]["names"]
    return Crd(
        group=spec["group"],
        kind=names["kind"],
        plural=names["plural"],
        singular=names.get("singular") or names["kind"].lower(),
        list_kind=names.get("listKind") or f"{names['kind']}List",
        short_names=tuple(names.get("shortNames") or ()),
        categories=tuple(names.get("categories") or ()),
        scope=spec["scope"],
        versions={raw["name"]: _version(raw) for raw in spec["versions"]},
        source=document,
    )


@functools.cache
def _by_group_kind() -> dict[tuple[str, str], Crd]:
    crds = {}
    for path in sorted(CRD_DIR.glob("*.yaml")):
        with path.open("rb") as handle:
            crd = _crd(yaml.load(handle, Loader=_LOADER))
        crds[(crd.group, crd.kind)] = crd
    return crds


# --- the public API ---------------------------------------------------------------------


def all_crds() -> list[Crd]:
    """Every vendored CRD (loaded on the first call)."""
    return list(_by_group_kind().values())


def crd_for(group: str, kind: str) -> Crd | None:
    """The vendored CRD of group/kind, None for a kind KubeFleet does not define."""
    return _by_group_kind().get((group, kind))


def _version_of(group: str, kind: str, version: str | None) -> CrdVersion | None:
    crd = crd_for(group, kind)
    return crd.version(version) if crd else None


def schema_for(group: str, kind: str, version: str | None = None) -> dict | None:
    """The openAPIV3Schema of group/kind at `version` (storage version by default)."""
    found = _version_of(group, kind, version)
    return found.schema if found else None


def printer_columns(group: str, kind: str, version: str | None = None) -> tuple[PrinterColumn, ...]:
    """The CRD's additionalPrinterColumns (empty for a kind without a CRD)."""
    found = _version_of(group, kind, version)
    return found.printer_columns if found else ()


def cel_rules(group: str, kind: str, version: str | None = None) -> tuple[CelRule, ...]:
    """Every x-kubernetes-validations rule of group/kind at `version`."""
    found = _version_of(group, kind, version)
    return found.cel_rules if found else ()
