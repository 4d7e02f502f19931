"""Celery tasks for health gates. The checks run on their own `health`
queue (settings' CELERY_TASK_ROUTES): a check waits on Prometheus, never on
an engine slot. Beat's lister is a short database read on the default queue,
so a deployment without a `health` worker collects no message a second.
Thin shells around services/health_gates.py."""

from celery import shared_task

from rollouts.services import health_gates

from .tasks import RETRY


@shared_task(**RETRY)
def health_gates_check_due() -> int:
    """Beat, every FLEET_HEALTH_TICK_SECONDS: one check task per gate due
    (none for a gate whose check is still queued)."""
    return health_gates.health_gates_enqueue_due(
        lambda gate: health_gate_check.delay(gate.kind, gate.namespace, gate.name))


@shared_task(**RETRY)
def health_gate_check(kind: str, namespace: str, name: str) -> str:
    """Check one gate (claimed by compare-and-set: a duplicate does nothing)."""
    row = health_gates.health_gate_check(kind=kind, namespace=namespace, name=name)
    return row.verdict if row is not None else ""
