"""Appending Event rows: the audit log and the run timeline."""

import unicodedata

from rollouts import clock
from rollouts import models as m
from rollouts.api import store
from rollouts.api.diff import MISSING, changed_leaves
from rollouts.api.kinds import Kind
from rollouts.controllers.family import APPROVAL_KINDS, RUN_KINDS

ENGINE = "system:engine"
SCHEDULER = "system:scheduler"

# Control characters (C0, DEL, C1), format characters (bidi overrides,
# zero-width) and line/paragraph separators: shown as escapes, never raw.
_INVISIBLE = {"Cc", "Cf", "Zl", "Zp"}


def _escape(char: str, *, backslash: bool) -> str:
    if char == "\\":
        return "\\\\" if backslash else char
    if unicodedata.category(char) not in _INVISIBLE:
        return char
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def visible_text(value) -> str:
    """`value` with control and format characters as visible escapes
    (ESC -> `\\x1b`, newline -> `\\x0a`, U+202E -> `\\u202e`): for exports
    that a terminal or a spreadsheet may show."""
    return "".join(_escape(char, backslash=False) for char in str(value))


def untrusted_text(value, limit: int) -> str:
    """Text from a request (a user name tried, a path) made safe for the
    audit log: control and format characters become visible escapes (as
    visible_text), a backslash is doubled so an escape cannot be faked, and
    the result is cut to `limit` characters without splitting an escape. A
    terminal, a log viewer or a spreadsheet showing the row then shows what
    was sent, and runs nothing."""
    out, size = [], 0
    for char in str(value):
        piece = _escape(char, backslash=True)
        if size + len(piece) > limit:
            break
        out.append(piece)
        size += len(piece)
    return "".join(out)


def run_of(kind_name: str, obj) -> str:
    """The update run an object belongs to, for the timeline filter."""
    if kind_name in RUN_KINDS:
        return obj.name
    if kind_name in APPROVAL_KINDS:
        return (obj.spec or {}).get("parentStageRollout", "")
    return ""


def record(
    *,
    actor: str,
    action: str,
    kind_name: str,
    name: str,
    namespace: str = "",
    run: str = "",
    reason: str = "",
    message: str = "",
    details: dict | None = None,
    time=None,
) -> m.Event:
    """Append one Event (sealed into the audit chain after commit)."""
    return m.Event.objects.create(
        time=time or clock.now(),
        actor=actor,
        action=action,
        object_kind=kind_name,
        object_namespace=namespace,
        object_name=name,
        run=run,
        reason=reason,
        message=message,
        details=details or {},
    )


def record_object(obj, kind: Kind, action: str, *, actor: str, **extra) -> m.Event:
    """Append an Event about `obj`; `extra` are record()'s keywords (details…)."""
    return record(
        actor=actor,
        action=action,
        kind_name=kind.kind,
        name=obj.name,
        namespace=obj.namespace,
        run=run_of(kind.kind, obj),
        **extra,
    )


def _diff(before, after) -> dict:
    """Changed leaves as {path: [before, after]}, None for a side that has no
    such path (lists compared whole)."""
    return {path: [None if a is MISSING else a, None if b is MISSING else b]
            for path, (a, b) in changed_leaves(before, after).items()
            if not (a in (None, MISSING) and b in (None, MISSING))}


def via_details(via: str) -> dict:
    """The `via` an audit row names (kube-api, cli, web…), when one was given."""
    return {"via": via} if via else {}


def record_change(obj, kind: Kind, before: dict, *, actor: str, action: str, via: str = "") -> m.Event:
    """A spec/metadata change; a run's `spec.state` change is its own action.
    `via` names the door it came through (details.via), when given."""
    after = store.to_manifest(obj, kind)
    changes = {
        path: pair
        for path, pair in _diff(before, after).items()
        if not path.startswith(("status", "metadata.resourceVersion", "metadata.generation"))
    }
    if kind.kind in RUN_KINDS and "spec.state" in changes:
        action = m.Event.Action.STATE_CHANGED
    return record_object(obj, kind, action, actor=actor, details={"changes": changes, **via_details(via)})


def record_status_change(obj, kind: Kind, before: dict, *, actor: str, details: dict | None = None) -> m.Event:
    """A person's write to the status subresource; `Approved=True` on an
    approval request is recorded as an approval with its message. `details`
    are added to the row's details (the log is append-only: the row cannot
    be amended after it is written)."""
    approved = next((c for c in obj.status.get("conditions") or [] if c.get("type") == "Approved"), None)
    was = next((c for c in before.get("conditions") or [] if c.get("type") == "Approved"), None)
    newly_approved = (
        kind.kind in APPROVAL_KINDS
        and approved is not None
        and approved.get("status") == "True"
        and (was or {}).get("status") != "True"
    )
    action = m.Event.Action.APPROVED if newly_approved else m.Event.Action.PATCHED
    return record_object(
        obj,
        kind,
        action,
        actor=actor,
        reason=(approved or {}).get("reason", "") if newly_approved else "",
        message=(approved or {}).get("message", "") if newly_approved else "",
        details={"changes": _diff({"status": before}, {"status": obj.status}), **(details or {})},
    )
