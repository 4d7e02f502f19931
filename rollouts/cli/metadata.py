"""`fleet label` and `fleet annotate`: kubectl's verbs for metadata.labels and
metadata.annotations.

Each object is changed by a merge patch through the same service as `fleet
patch` (rollouts.services.objects.object_patch), so validation, the refusal of
mirrored objects and the audit event are the same. As kubectl does, the
`--overwrite` check reads the object first; the patch then carries the
resourceVersion it read, so a change made in between is a Conflict rather than
a silent overwrite.
"""

from dataclasses import dataclass

from rollouts.api import store
from rollouts.api.errors import ApiError
from rollouts.api.kinds import Kind, KindRegistry
from rollouts.api.labels import parse_selector
from rollouts.services.objects import object_patch

from . import inputs, printers
from .errors import CliError, format_error


@dataclass(frozen=True)
class Changes:
    """What the command line asks for: keys to set (with values) and keys to remove."""

    set: dict[str, str]
    remove: list[str]


@dataclass(frozen=True)
class Field:
    """The differences between the two verbs, in kubectl's words."""

    name: str  # the metadata field
    verb: str
    noun: str

    def conflict(self, key: str, value: str) -> str:
        if self.name == "labels":
            return f"'{key}' already has a value ({value}), and --overwrite is false"
        return f"--overwrite is false but found the following declared annotation(s): '{key}' already has a value ({value})"

    def outcome(self, old: dict, new: dict, overwrite: bool) -> str:
        """kubectl's word for the result: label says `not labeled` for a
        no-op and `unlabeled` for a removal without --overwrite; annotate
        always says `annotated`."""
        if self.name != "labels":
            return "annotated"
        if old == new:
            return "not labeled"
        return "unlabeled" if not overwrite and len(new) < len(old) else "labeled"


LABELS = Field("labels", "label", "label")
ANNOTATIONS = Field("annotations", "annotate", "annotation")


def label_command(ctx) -> None:
    """Add, change or remove labels on objects."""
    _run(ctx, LABELS)


def annotate_command(ctx) -> None:
    """Add, change or remove annotations on objects."""
    _run(ctx, ANNOTATIONS)


def _run(ctx, field: Field) -> None:
    resources, changes = split_args(ctx.options["items"], field)
    errors = []
    for kind, obj in _targets(ctx, resources):
        try:
            ctx.out.write(_change(ctx, field, kind, obj, changes))
        except (ApiError, CliError) as exc:
            errors.append(exc)
    for error in errors:
        ctx.err.write(format_error(error))
    if errors:
        raise SystemExit(1)


def split_args(args: list[str], field: Field) -> tuple[list[str], Changes]:
    """`KIND NAME... key=value key-` into the resource arguments and the
    changes; as kubectl, every change comes after the resources."""
    resources: list[str] = []
    pairs: list[str] = []
    for arg in args:
        if "=" in arg or arg.endswith("-"):
            pairs.append(arg)
        elif pairs:
            raise CliError(f"all resources must be specified before {field.noun} changes: {arg}")
        else:
            resources.append(arg)
    if not pairs:
        raise CliError(f"at least one {field.noun} update is required")
    changes = Changes(
        set=dict(pair.split("=", 1) for pair in pairs if "=" in pair),
        remove=[pair[:-1] for pair in pairs if "=" not in pair],
    )
    both = sorted(set(changes.set) & set(changes.remove))
    if both:
        raise CliError(f"can not both modify and remove the following {field.noun}(s) in the same command: {', '.join(both)}")
    return resources, changes


def _targets(ctx, resources: list[str]) -> list[tuple[Kind, object]]:
    """The objects named, or every object of the kind matching -l / --all."""
    registry = KindRegistry()
    groups = inputs.parse_refs(registry, resources)
    names_given = any(names for _, names in groups)
    selector_text, select_all = ctx.options.get("selector"), ctx.options.get("all")
    if names_given and (selector_text or select_all):
        raise CliError("names cannot be provided when a selector or --all is specified")
    if not names_given and not (selector_text or select_all):
        raise CliError("resource(s) were provided, but no name was specified")
    if ctx.options.get("resource_version") and not _one_name(groups):
        raise CliError("--resource-version may only be used with a single resource")
    if not names_given:
        selector = parse_selector(selector_text) if selector_text else None
        return [(kind, obj) for kind, _ in groups for obj in store.list_objects(kind, ctx.namespace_for(kind), selector)]
    return [(kind, store.get(kind, name, ctx.namespace_for(kind) or "")) for kind, names in groups for name in names]


def _one_name(groups) -> bool:
    return sum(len(names) for _, names in groups) == 1


def _change(ctx, field: Field, kind: Kind, obj, changes: Changes) -> str:
    manifest = store.to_manifest(obj, kind)
    old = dict(manifest.get("metadata", {}).get(field.name) or {})
    overwrite = bool(ctx.options.get("overwrite"))
    if not overwrite:
        for key, value in changes.set.items():
            if key in old and old[key] != value:
                raise CliError(field.conflict(key, old[key]))
    new = {**{k: v for k, v in old.items() if k not in changes.remove}, **changes.set}
    if new != old:
        version = ctx.options.get("resource_version") or manifest["metadata"].get("resourceVersion")
        patch = {k: None for k in changes.remove if k in old} | changes.set
        object_patch(
            kind=kind,
            name=obj.name,
            namespace=ctx.namespace_for(kind) or "",
            patch_type="merge",
            patch={"metadata": {field.name: patch, "resourceVersion": version}},
            subresource=None,
            actor=ctx.actor,
            via="cli",
        )
    return f"{printers.object_name(kind, obj)} {field.outcome(old, new, overwrite)}"
