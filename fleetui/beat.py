"""Beat's scheduler: django-celery-beat's DatabaseScheduler, quiet about Redis
outages.

Celery's `Scheduler.apply_entry` logs every entry it cannot send as an
error with the stack and the traceback; with Redis down that is several
tracebacks a second (the engine's entries are due every 1-5 s) for as long
as the outage lasts. Here an entry that fails because the broker cannot be
reached logs one warning for the whole outage, and one when a send works
again (rollouts.outages). Any other failure is logged as Celery logs it.

Nothing is lost by skipping: every entry is a sweep that finds its work in
the database at the next tick after Redis is back.

Used through settings.CELERY_BEAT_SCHEDULER.
"""

import logging

from celery.beat import SchedulingError
from django_celery_beat.schedulers import DatabaseScheduler as BaseDatabaseScheduler

from rollouts import outages

log = logging.getLogger("celery.beat")


class DatabaseScheduler(BaseDatabaseScheduler):
    def apply_entry(self, entry, producer=None):
        """Send one due entry; see the module docstring for what is logged."""
        try:
            self.apply_async(entry, producer=producer, advance=False)
        except SchedulingError as exc:
            if not outages.is_connection_error(exc):
                log.error("Message Error: %s", exc, exc_info=True)
                return
            outages.REDIS.failed(exc, "beat skips its schedule until Redis is back", logger=log)
        else:
            outages.REDIS.succeeded(logger=log)
