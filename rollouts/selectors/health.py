"""Is this deployment ready to work? The checks behind /readyz and the
admins' banner, each cheap enough to run every second.

    database  one query, which also reads every heartbeat
    redis     one PING with half-second timeouts (only when REDIS_URL is set)
    beat      beat published its heartbeat task recently   } production mode
    workers   a Celery worker ran it recently              } (REDIS_URL set)
    engine    the in-process engine loop finished a pass recently (embedded mode)
"""

from dataclasses import dataclass
from datetime import timedelta
from functools import cache

import redis
from django.conf import settings
from django.db import DatabaseError
from redis.backoff import NoBackoff
from redis.retry import Retry

from rollouts import clock
from rollouts import models as m

REDIS_TIMEOUT = 0.5
Source = m.Heartbeat.Source
# The heartbeats each mode needs, and the name of the check that reads each.
PRODUCTION_HEARTBEATS = {Source.BEAT: "beat", Source.WORKER: "workers"}
EMBEDDED_HEARTBEATS = {Source.ENGINE: "engine"}


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class Readiness:
    checks: tuple[Check, ...]

    @property
    def ready(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def failing(self) -> list[str]:
        return [check.name for check in self.checks if not check.ok]


def production_mode() -> bool:
    """Celery workers and beat do the background work (REDIS_URL is set)."""
    return bool(settings.REDIS_URL)


def readiness() -> Readiness:
    """Every check of this mode. With the database down the heartbeats cannot
    be read, and only the database is named."""
    checks = []
    try:
        seen = dict(m.Heartbeat.objects.values_list("source", "seen_at"))
        checks.append(Check("database", True))
    except DatabaseError as exc:
        checks.append(Check("database", False, _first_line(exc)))
        seen = None
    if production_mode():
        checks.append(_redis_check(settings.REDIS_URL))
    if seen is not None:
        checks += heartbeat_checks(seen)
    return Readiness(tuple(checks))


def heartbeat_checks(seen: dict) -> list[Check]:
    """One check per heartbeat this mode needs: fresh if seen within
    FLEET_HEARTBEAT_STALE_SECONDS."""
    needed = PRODUCTION_HEARTBEATS if production_mode() else EMBEDDED_HEARTBEATS
    stale_after = timedelta(seconds=settings.FLEET_HEARTBEAT_STALE_SECONDS)
    now = clock.precise_now()
    checks = []
    for source, name in needed.items():
        at = seen.get(source)
        if at is None:
            checks.append(Check(name, False, "never seen"))
        elif now - at > stale_after:
            checks.append(Check(name, False, f"last seen {int((now - at).total_seconds())} s ago"))
        else:
            checks.append(Check(name, True))
    return checks


def background_problems() -> list[Check]:
    """For the admins' banner: the background processes (beat, workers) that
    are gone. Production mode only; one query."""
    if not production_mode():
        return []
    seen = dict(m.Heartbeat.objects.values_list("source", "seen_at"))
    return [check for check in heartbeat_checks(seen) if not check.ok]


def _redis_check(url: str) -> Check:
    try:
        _redis_client(url).ping()
        return Check("redis", True)
    except redis.RedisError as exc:
        return Check("redis", False, _first_line(exc))


@cache
def _redis_client(url: str) -> redis.Redis:
    """One client (and connection pool) per process, reused by every probe.
    No retries (redis-py retries three times by default): a probe answers
    within REDIS_TIMEOUT, and the next probe is the retry."""
    return redis.Redis.from_url(url, socket_connect_timeout=REDIS_TIMEOUT, socket_timeout=REDIS_TIMEOUT,
                                retry=Retry(NoBackoff(), 0))


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
