"""Celery tasks that keep hub mirrors current: thin shells over rollouts.mirror.

Each hub has one chain of `hub_sync` tasks: a session watches the hub for
FLEET_HUB_SESSION_SECONDS and enqueues the next one when it ends (at once
after a good session, after the backoff after a failed one). Beat runs
`hub_connections_sync` as the safety net that restarts a chain a lost
message or a dead worker broke; the session's lease (compare-and-set) turns
any duplicate into a no-op, so chains never multiply.
"""

from celery import shared_task

from rollouts import mirror

SYNC = {"acks_late": True, "ignore_result": True}


@shared_task(**SYNC)
def hub_sync(connection_id: int) -> str:
    """One session with a hub, then the next one in the chain."""
    result = mirror.hub_sync(connection_id=connection_id)
    if result.next_in is not None:
        hub_sync.apply_async((connection_id,), countdown=result.next_in)
    return result.outcome


@shared_task(**SYNC)
def hub_connections_sync() -> int:
    """Beat: start a session for every hub that has none and is not backing off."""
    due = mirror.hub_connections_due()
    for connection_id in due:
        hub_sync.delay(connection_id)
    return len(due)
