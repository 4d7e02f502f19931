"""Durations as Kubernetes reads and prints them: Go durations (`30s`,
`1m30s`, `1.5h`, `500ms`) read the way metav1.Duration reads them, the one
parser for strategies' `waitTime` and the `fleet` command's `--timeout`; and
kubectl's AGE column (human_duration)."""

import re

UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_NUMBER_UNIT = r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)"
_WHOLE = re.compile(rf"^(?:{_NUMBER_UNIT})+$")
_PART = re.compile(_NUMBER_UNIT)


def parse_duration(text: str) -> float:
    """Seconds in a Go duration; a bare `0` is zero. Raises ValueError for
    anything else (no unit, unknown unit, empty)."""
    compact = (text or "").strip()
    if compact == "0":
        return 0.0
    if not _WHOLE.match(compact):
        raise ValueError(f"invalid duration {text!r}")
    return sum(float(number) * UNIT_SECONDS[unit] for number, unit in _PART.findall(compact))


def human_duration(seconds: float) -> str:
    """kubectl's AGE: 51s, 2m6s, 13m, 5h, 3d4h (k8s.io/apimachinery duration.HumanDuration)."""
    seconds = int(seconds)
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        rest = seconds % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = seconds // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"
