from django.apps import AppConfig

from fleetui.sqlite_backend import base as sqlite_backend


class RolloutsConfig(AppConfig):
    name = "rollouts"
    verbose_name = "Fleet rollouts"

    def ready(self):
        from rollouts import broadcast, changes, notifier, signals  # noqa: F401 (signals: the login audit receivers)
        from rollouts.engine import wakeup
        from rollouts.services import audit

        # Who reacts to what changed, after commit (rollouts/changes.py), in
        # this order: the engine first (a person may be waiting on it), then
        # the pages, then the audit chain, then notifications (they only write
        # delivery rows here and hand them to a sender; docs/notifications.md).
        changes.subscribe(wakeup.on_changes)
        changes.subscribe(broadcast.on_changes)
        changes.subscribe(audit.on_changes)
        changes.subscribe(notifier.on_changes)
        # A SQLite writer kept waiting for the lock asks the engine loop for a gap.
        sqlite_backend.writer_waiting_hooks[:] = [wakeup.writer_waiting]
