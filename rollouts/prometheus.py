"""The only module that talks to a Prometheus server: one range query over
its HTTP API (`POST /api/v1/query_range`), the answer as engine.health.Series.

Anything short of a well-formed answer raises PrometheusUnavailable with one
line for the page (unreachable, refused, an HTTP error, a PromQL error), so
the caller can call the query "unknown". The bearer token is read from the
environment variable the declaration names (FLEET_PROMETHEUS_* only), at
the call, appears in no message and no log line, and follows no redirect.
"""

import json
import math
import os
import urllib.error
import urllib.parse
import urllib.request

from rollouts.api.health_gate import TOKEN_ENV_PREFIX
from rollouts.engine.health import Series

TIMEOUT_SECONDS = 5.0
_ANSWER_LIMIT = 8 * 1024 * 1024  # a gate's query answers with a few series, not a whole TSDB
_SERIES_LIMIT = 50


class PrometheusUnavailable(Exception):
    """Prometheus did not give a usable answer; str() is one line, without secrets."""


def query_range(*, url: str, token_env: str, expr: str, start: float, end: float, step: float) -> tuple[Series, ...]:
    """The series of `expr` from `start` to `end` (unix seconds) every `step`
    seconds, as Prometheus evaluates them. Raises PrometheusUnavailable."""
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
    if token_env:
        if not token_env.startswith(TOKEN_ENV_PREFIX):  # validated on apply; a hub's strategy is not
            raise PrometheusUnavailable(f"the token variable must be named {TOKEN_ENV_PREFIX}*")
        token = os.environ.get(token_env, "")
        if not token:
            raise PrometheusUnavailable(f"the environment variable {token_env} (the bearer token) is not set")
        headers["Authorization"] = f"Bearer {token}"
    body = urllib.parse.urlencode({"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}",
                                   "step": f"{max(step, 0.001):.3f}"}).encode()
    request = urllib.request.Request(f"{url}/api/v1/query_range", data=body, headers=headers, method="POST")
    return _series(_answer(request, url))


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is refused, not followed: urllib would carry the bearer
    token along to wherever it points."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        raise urllib.error.HTTPError(req.full_url, code, f"redirected to {newurl}: not followed", headers, fp)


_opener = urllib.request.build_opener(_NoRedirects)


def _answer(request: urllib.request.Request, url: str) -> dict:
    try:
        with _opener.open(request, timeout=TIMEOUT_SECONDS) as response:
            raw = response.read(_ANSWER_LIMIT + 1)
    except urllib.error.HTTPError as exc:
        raise PrometheusUnavailable(f"{url} answered HTTP {exc.code}: {_error_text(exc)}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise PrometheusUnavailable(f"cannot reach {url}: {reason}") from None
    if len(raw) > _ANSWER_LIMIT:
        raise PrometheusUnavailable(f"{url} answered with more than {_ANSWER_LIMIT // 1024 // 1024} MiB")
    try:
        answer = json.loads(raw)
    except ValueError:
        raise PrometheusUnavailable(f"{url} answered with something other than JSON") from None
    if not isinstance(answer, dict) or answer.get("status") != "success":
        raise PrometheusUnavailable(f"{url}: {_first_line((answer or {}).get('error', 'unexpected answer'))}")
    return answer.get("data") or {}


def _error_text(exc: urllib.error.HTTPError) -> str:
    try:
        return _first_line(json.loads(exc.read(65536)).get("error", exc.reason))
    except (ValueError, AttributeError, OSError):
        return _first_line(exc.reason)


def _first_line(text) -> str:
    return " ".join(str(text).split())[:300]


def _series(data: dict) -> tuple[Series, ...]:
    if data.get("resultType") != "matrix" or not isinstance(data.get("result"), list):
        raise PrometheusUnavailable("Prometheus answered with no matrix")
    out = []
    for item in data["result"][:_SERIES_LIMIT]:
        metric = item.get("metric") or {}
        labels = ", ".join(f'{k}="{v}"' for k, v in sorted(metric.items()) if k != "__name__")
        out.append(Series(labels, tuple((float(t), _value(v)) for t, v in item.get("values") or [])))
    return tuple(out)


def _value(text: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan
