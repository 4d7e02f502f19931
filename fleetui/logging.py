"""Logs: plain text by default, one JSON object per line with LOG_FORMAT=json.

Every line carries what is known about the work it belongs to, from context
variables set at the edges:

    request_id, user  request_context (middleware): one id per request, an
                      incoming X-Request-ID kept when well-formed, and sent
                      back in the response's X-Request-ID
    task_id, task     Celery's task_prerun / task_postrun (fleetui/celery.py)
    run               the same, for tasks declared with `run_from_args=True`
                      (their first two arguments are the run's kind and pk)

Daphne, Celery workers and beat all log through Django's LOGGING (Celery is
told not to install its own handlers: celery_setup_logging).
"""

import json
import logging
import logging.config
import re
import time
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime

from django.conf import settings

REQUEST_ID_HEADER = "X-Request-ID"
# Ids from a proxy or a client are kept only if they cannot break a log line.
_WELL_FORMED_ID = re.compile(r"[A-Za-z0-9._:+=/-]{1,128}")

current_request_id: ContextVar[str] = ContextVar("request_id", default="")
current_user: ContextVar[str] = ContextVar("user", default="")
current_task_id: ContextVar[str] = ContextVar("task_id", default="")
current_task: ContextVar[str] = ContextVar("task", default="")
current_run: ContextVar[str] = ContextVar("run", default="")
_CONTEXT = {"request_id": current_request_id, "user": current_user, "task_id": current_task_id,
            "task": current_task, "run": current_run}

access_log = logging.getLogger("fleetui.requests")

# Attributes every LogRecord has; anything else was passed as `extra=`.
_RECORD_FIELDS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, the context
    that is set, any `extra=` fields, and the exception's traceback as text."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_context_of(record))
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and key != "request":
                entry.setdefault(key, value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)


def _context_of(record: logging.LogRecord) -> dict:
    """The context variables that are set; for Django's own lines about a
    response (logged after the middleware returned), the request's."""
    context = {name: var.get() for name, var in _CONTEXT.items() if var.get()}
    request = getattr(record, "request", None)
    if request is not None and "request_id" not in context:
        for name in ("request_id", "user"):
            value = getattr(request, f"log_{name}", "")
            if value:
                context[name] = value
    return context


def configure(logging_settings: dict) -> None:
    """LOGGING_CONFIG: apply Django's LOGGING; with JSON logs, Python warnings
    become log records too, so that nothing else reaches stderr."""
    logging.config.dictConfig(logging_settings)
    logging.captureWarnings(getattr(settings, "LOG_FORMAT", "plain") == "json")


def celery_setup_logging(loglevel=None, **kwargs) -> None:
    """Celery's setup_logging signal: a receiver keeps Celery from installing
    its own handlers on the root logger, so workers and beat log as Django
    does. `--loglevel` still sets the level of Celery's own loggers."""
    configure(settings.LOGGING)
    if loglevel:
        logging.getLogger("celery").setLevel(loglevel)


def celery_task_started(task_id: str = "", task=None, args=(), **kwargs) -> None:
    """task_prerun: the ids of the task, and of its run where the task has one."""
    current_task_id.set(task_id or "")
    current_task.set(getattr(task, "name", "") or "")
    current_run.set(f"{args[0]}/{args[1]}" if getattr(task, "run_from_args", False) and len(args) >= 2 else "")


def celery_task_finished(**kwargs) -> None:
    """task_postrun: what follows in this worker process is no task's."""
    for var in (current_task_id, current_task, current_run):
        var.set("")


def request_id_from(value: str | None) -> str:
    """The incoming id if well-formed, else a new one."""
    if value and _WELL_FORMED_ID.fullmatch(value):
        return value
    return uuid.uuid4().hex


def request_context(get_response):
    """Middleware (after authentication): a request id and the person for
    every log line of the request, the id in the response's X-Request-ID
    header, and one access line per request."""

    def middleware(request):
        started = time.monotonic()
        request.log_request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))
        request.log_user = request.user.get_username() if request.user.is_authenticated else ""
        tokens = (current_request_id.set(request.log_request_id), current_user.set(request.log_user))
        try:
            response = get_response(request)
            response.headers[REQUEST_ID_HEADER] = request.log_request_id
            access_log.info("%s %s %s", request.method, request.path, response.status_code,
                            extra={"method": request.method, "path": request.path,
                                   "status": response.status_code,
                                   "duration_ms": round((time.monotonic() - started) * 1000, 1)})
            return response
        finally:
            current_user.reset(tokens[1])
            current_request_id.reset(tokens[0])

    return middleware
