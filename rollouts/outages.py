"""Redis or the database going away, said in one line.

Every process (a `fleet` command, daphne, a worker, beat) reports an outage
once, when it first notices, and once more when the service is back: never
a traceback per failed send. What a person needs from that line is what is
down, where, why, and what happened to their action.

    REDIS.failed(exc, "the change is saved; ...")   # logs once per outage
    REDIS.succeeded()                                # logs "back" once
"""

import logging
import os
import threading
from urllib.parse import urlsplit

import kombu.exceptions
import redis.exceptions
from django.conf import settings
from django.db import connections

log = logging.getLogger(__name__)

# What a write that committed while Redis was down should tell its author:
# the wake-up and the live push are lost, the change is not.
CHANGE_SAVED = "the change is saved; the engine's safety-net pass and live pages catch up once Redis is back"


def redis_location() -> str:
    """HOST:PORT of REDIS_URL (never its password)."""
    parts = urlsplit(getattr(settings, "REDIS_URL", "") or "")
    return f"{parts.hostname or '127.0.0.1'}:{parts.port or 6379}"


def database_location(alias: str = "default") -> str:
    """HOST:PORT of a configured database, or the file of a SQLite one."""
    return database_address(settings.DATABASES[alias])


def database_address(db: dict) -> str:
    """HOST:PORT of one DATABASES entry, or the file of a SQLite one."""
    if "sqlite" in db["ENGINE"]:
        return str(db["NAME"])
    return f"{db.get('HOST') or 'localhost'}:{db.get('PORT') or 5432}"


CONNECTION_ERRORS = (kombu.exceptions.OperationalError, redis.exceptions.ConnectionError,
                     redis.exceptions.TimeoutError, OSError)


def short_reason(exc: BaseException) -> str:
    """The part of an error's message that says why, on one line: the last
    clause of its first line ('Connection refused', 'terminating connection
    due to administrator command'), from the innermost cause. An exception
    that was only being handled nearby (kombu's empty channel pool, an
    IndexError) is context, not cause: context is followed only to a
    connection error."""
    while True:
        context = None if exc.__suppress_context__ else exc.__context__
        inner = exc.__cause__ or (context if isinstance(context, CONNECTION_ERRORS) else None)
        if inner is None:
            break
        exc = inner
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno)  # not "[Errno 111] Connect call failed ('127.0.0.1', 6379)"
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    return lines[0].rsplit(": ", 1)[-1].rstrip(".")


def is_connection_error(exc: BaseException) -> bool:
    """Whether an error (or what caused it) means the service could not be
    reached: kombu's OperationalError, redis-py's ConnectionError or
    TimeoutError, or a plain socket error."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, CONNECTION_ERRORS):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def database_unreachable(alias: str = "default") -> bool:
    """After a DatabaseError: whether the database cannot be reached now (a
    fresh connection fails), as opposed to a query that failed on its own.
    Closes the broken connection either way."""
    connection = connections[alias]
    try:
        connection.close()
    except Exception:  # noqa: BLE001 (closing a dead connection may fail in many ways)
        pass
    try:
        connection.ensure_connection()
    except Exception:  # noqa: BLE001 (any failure to connect is "unreachable")
        return True
    return False


class Outage:
    """One service's up/down state in this process, so each outage is
    logged once when noticed and once when it ends. Thread-safe."""

    def __init__(self, name: str, location):
        self.name, self._location, self._down, self._lock = name, location, False, threading.Lock()

    @property
    def down(self) -> bool:
        return self._down

    def failed(self, exc: BaseException, consequence: str, *, logger: logging.Logger = log) -> None:
        """A call to the service failed with `exc`: log one warning line
        (`consequence` says what happened to the action) unless this outage
        was already reported."""
        with self._lock:
            if self._down:
                return
            self._down = True
        logger.warning("%s unavailable at %s (%s): %s", self.name, self._location(), short_reason(exc), consequence)

    def succeeded(self, *, logger: logging.Logger = log) -> None:
        """A call to the service worked: log one line if it was down."""
        if not self._down:
            return
        with self._lock:
            if not self._down:
                return
            self._down = False
        logger.warning("%s at %s is back", self.name, self._location())


REDIS = Outage("Redis", redis_location)
