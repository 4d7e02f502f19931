"""The Celery app, and the beat schedule: every periodic task is declared here.

Workers:  celery -A fleetui worker --concurrency 2   (queues placements, interactive, celery: in that order)
Hubs:     celery -A fleetui worker -Q hubs --concurrency <number of hub connections>
Health:   celery -A fleetui worker -Q health   (health gates: Prometheus queries)
Notify:   celery -A fleetui worker -Q notifications --concurrency 4   (webhooks, Slack, Teams, email)
Beat:     celery -A fleetui beat      (scheduler: fleetui.beat.DatabaseScheduler, from settings)

Reaction time never depends on beat: every write enqueues the advance it
causes after its transaction commits (rollouts/engine/wakeup.py). Beat is
the safety net for anything a lost message or a dead worker dropped.
"""

import os

from celery import Celery, signals
from django import db
from django.conf import settings

from fleetui import logging as fleet_logging

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fleetui.settings")

app = Celery("fleetui")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Workers and beat log through Django's LOGGING (plain or JSON), with the
# task's ids on every line the task logs.
signals.setup_logging.connect(fleet_logging.celery_setup_logging, weak=False)
signals.task_prerun.connect(fleet_logging.celery_task_started, weak=False)
signals.task_postrun.connect(fleet_logging.celery_task_finished, weak=False)


def _check_connections(**_kwargs) -> None:
    """Before each task, as Django does before each request: close database
    connections that are broken or older than CONN_MAX_AGE (the next query
    opens a fresh one, health-checked first with CONN_HEALTH_CHECKS). The
    rest are kept: with CELERY_DB_REUSE_MAX the fixup no longer closes them."""
    db.close_old_connections()


signals.task_prerun.connect(_check_connections, weak=False)
signals.task_postrun.connect(_check_connections, weak=False)

app.conf.beat_schedule = {
    # Runs whose timer is due: a TimedWait ending, clusters in flight to poll.
    "advance-due-runs": {"task": "rollouts.tasks.runs_advance_due", "schedule": 1.0},
    # Every active run, in case a wake-up was lost (Redis restart, killed worker).
    "advance-active-runs": {"task": "rollouts.tasks.runs_advance_active",
                            "schedule": settings.FLEET_ACTIVE_RUNS_SWEEP_SECONDS},
    # Freezes that start or stop holding by the clock (a window opening), and mirrored hubs' runs they stop.
    "sync-freezes": {"task": "rollouts.tasks.freezes_sync", "schedule": 5.0},
    # Member status sync: applies that are due on members.
    "sync-members": {"task": "rollouts.tasks.members_sync", "schedule": 5.0},
    # KubeFleet hub mirrors: restart any session chain a lost message broke.
    "sync-hubs": {"task": "rollouts.tasks_k8s.hub_connections_sync", "schedule": settings.FLEET_HUB_SYNC_SECONDS},
    # Health gates due a check: the lister sends each check to the `health` queue.
    "check-health-gates": {"task": "rollouts.tasks_health.health_gates_check_due",
                           "schedule": settings.FLEET_HEALTH_TICK_SECONDS,
                           "options": {"expires": max(5.0, 5 * settings.FLEET_HEALTH_TICK_SECONDS)}},
    # Notifications due: retries after their backoff, hand-offs a lost message dropped.
    "notifications-sweep": {"task": "rollouts.tasks.notifications_send_due", "schedule": 10.0},
    # The watch's change log: tombstones older than its retention (docs/kube-api.md).
    "compact-change-log": {"task": "rollouts.tasks.change_log_compact", "schedule": 60.0},
    # Housekeeping: what deleted members left behind.
    "housekeeping": {"task": "rollouts.tasks.housekeeping", "schedule": 3600.0},
    # Signs of life for /readyz: beat records its own when it has published
    # this, the worker that runs it records its own (rollouts.tasks.heartbeat).
    # A heartbeat nobody ran in time is worthless: it expires.
    "heartbeat": {"task": "rollouts.tasks.heartbeat", "schedule": settings.FLEET_HEARTBEAT_SECONDS,
                  "options": {"expires": settings.FLEET_HEARTBEAT_STALE_SECONDS}},
}
