"""`fleet health REQUEST`: what a gate's health gate last found (the same
evidence the approve dialog shows), and `--check` to check it now."""

from rollouts.api.kinds import KindRegistry
from rollouts.selectors.approvals import approval_get
from rollouts.selectors.health_gates import health_view_of
from rollouts.services.health_gates import health_gate_check

from . import printers
from .errors import CliError


def health_command(ctx) -> None:
    """Print the gate's verdict, its mode, and per query the value now, the
    healthy side of the threshold, pass/fail/unknown and the graph link."""
    name, namespace = ctx.options["request"], ctx.options.get("namespace") or ""
    kind = KindRegistry().resolve("approvalrequest" if namespace else "clusterapprovalrequest")
    request = approval_get(name=name, namespace=namespace)
    if request is None:
        raise CliError(f'{kind.plural}.{kind.group} "{name}" not found')
    if ctx.options.get("check") and health_gate_check(kind=kind.kind, namespace=namespace, name=name) is None:
        ctx.err.write("not checked now: no waiting gate with a health gate, or its check is not due yet")
    view = health_view_of(request)
    if view is None:
        ctx.out.write(f"{name}: no health check recorded (no health gate, or not checked yet)")
        return
    checked = f", checked {view.checked_at:%Y-%m-%d %H:%M:%S} UTC over the last {view.window}" if view.checked_at else ""
    ctx.out.write(f"{name}: health gate {view.verdict} ({view.mode}: {view.mode_text}){checked}")
    if view.outcome_text:
        ctx.out.write(view.outcome_text)
    ctx.out.write(view.message)
    rows = [["QUERY", "NOW", "HEALTHY", "RESULT", "GRAPH"]]
    rows += [[q.name, q.value + (f" ({q.labels})" if q.labels else ""), q.rule, q.verdict_text, q.graph]
             for q in view.queries]
    ctx.out.write(printers.format_table(rows))
