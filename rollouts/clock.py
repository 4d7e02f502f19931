"""The one clock the hub reads. Tests freeze or advance it; nothing else reads
the wall clock directly, so timed waits are testable without sleeping."""

import contextlib
from datetime import UTC, datetime, timedelta

_frozen: list[datetime] = []


def now() -> datetime:
    """The current time, whole seconds, UTC (Kubernetes times have no fractions)."""
    current = _frozen[-1] if _frozen else datetime.now(UTC)
    return current.replace(microsecond=0)


def precise_now() -> datetime:
    """Like now() but keeps microseconds, for durations and benchmarks."""
    return _frozen[-1] if _frozen else datetime.now(UTC)


@contextlib.contextmanager
def frozen(at: datetime):
    """Freeze the clock at `at` inside the block; `advance()` moves it."""
    _frozen.append(at)
    try:
        yield
    finally:
        _frozen.pop()


def advance(seconds: float) -> datetime:
    """Move a frozen clock forward."""
    _frozen[-1] = _frozen[-1] + timedelta(seconds=seconds)
    return _frozen[-1]


# (moment, text) formatted last: a pass stamps hundreds of conditions with one
# `now`. A tuple replaced whole, so a thread reads a matching pair.
_last_formatted: tuple = (None, None)


def rfc3339(moment: datetime | None) -> str | None:
    global _last_formatted
    if moment is None:
        return None
    last = _last_formatted
    if last[0] is moment:
        return last[1]
    text = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    _last_formatted = (moment, text)
    return text


def parse_rfc3339(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
