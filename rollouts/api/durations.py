"""Go durations (`30s`, `1m30s`, `1.5h`, `500ms`), read the way Kubernetes'
metav1.Duration reads them: the one parser for strategies' `waitTime` and the
`fleet` command's `--timeout`."""

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
