"""Celery tasks for health gates, on their own `health` queue (settings'
CELERY_TASK_ROUTES): a check waits on Prometheus, never on an engine slot.
Thin shells around services/health_gates.py."""

from celery import shared_task

from rollouts.services import health_gates

from .tasks import RETRY


@shared_task(**RETRY)
def health_gates_check_due() -> int:
    """Beat, every FLEET_HEALTH_TICK_SECONDS: one check task per gate due."""
    due = health_gates.health_gates_due()
    for gate in due:
        health_gate_check.delay(gate.kind, gate.namespace, gate.name)
    return len(due)


@shared_task(**RETRY)
def health_gate_check(kind: str, namespace: str, name: str) -> str:
    """Check one gate (claimed by compare-and-set: a duplicate does nothing)."""
    row = health_gates.health_gate_check(kind=kind, namespace=namespace, name=name)
    return row.verdict if row is not None else ""
