"""Signs of life of the background processes, for /readyz and the admins' banner."""

from django.db import models


class Heartbeat(models.Model):
    """The last time a background process showed it was working: one row per
    source, overwritten in place (rollouts.services.health).

    source: BEAT (beat published its heartbeat task), WORKER (a Celery worker
        ran that task), ENGINE (the in-process engine loop of the embedded
        mode finished a pass).
    seen_at: when, on the hub clock.
    by: which process, where known (the worker's node name).

    Why the database and not a Redis key: /readyz reads the database anyway,
    so one query checks it and reads every heartbeat; rows survive a Redis
    restart (Redis here runs without persistence, and a forgotten key would
    turn every Redis blip into "beat is gone"); the embedded mode has no
    Redis. The cost is one tiny upsert per source every FLEET_HEARTBEAT_SECONDS.
    """

    class Source(models.TextChoices):
        BEAT = "beat"
        WORKER = "worker"
        ENGINE = "engine"

    source = models.CharField(max_length=16, choices=Source.choices, primary_key=True)
    seen_at = models.DateTimeField()
    by = models.CharField(max_length=255, blank=True, default="")

    def __str__(self) -> str:
        return f"{self.source} seen at {self.seen_at:%Y-%m-%d %H:%M:%S}"
