"""The small JSONPath subset CRD printer columns use, evaluated over a
manifest: `.spec.placementName`, `.metadata.generation`,
`.status.conditions[?(@.type=="Approved")].status`, and keys with escaped
dots (`.status.properties.kubernetes-fleet\\.io/node-count.value`).

cell(manifest, path) gives the text a table shows: "" for nothing, numbers
and booleans as JSON writes them, the first match when a filter matches
several (as the API server's Table output does).
"""

import json
import re

_FILTER = re.compile(r"""\[\?\(@\.([A-Za-z0-9_-]+)\s*==\s*(?:"([^"]*)"|'([^']*)')\)\]""")


def _steps(path: str) -> list:
    """`.a.b[?(@.k=="v")].c` as ["a", "b", ("k", "v"), "c"]."""
    steps: list = []
    i, name = 0, ""
    while i < len(path):
        char = path[i]
        if char == "\\" and i + 1 < len(path):
            name, i = name + path[i + 1], i + 2
            continue
        if char == ".":
            if name:
                steps.append(name)
            name, i = "", i + 1
            continue
        if char == "[" and (found := _FILTER.match(path, i)):
            if name:
                steps.append(name)
            name = ""
            steps.append((found.group(1), found.group(2) if found.group(2) is not None else found.group(3)))
            i = found.end()
            continue
        name, i = name + char, i + 1
    if name:
        steps.append(name)
    return steps


def values(manifest, path: str) -> list:
    """Every value `path` reaches in `manifest`."""
    current = [manifest]
    for step in _steps(path):
        found = []
        for value in current:
            if isinstance(step, tuple) and isinstance(value, list):
                key, wanted = step
                found += [v for v in value if isinstance(v, dict) and str(v.get(key)) == wanted]
            elif isinstance(step, str) and isinstance(value, dict) and step in value:
                found.append(value[step])
        current = found
    return [v for v in current if v is not None]


def cell(manifest, path: str) -> str:
    """The first value `path` reaches, as table text ("" when none)."""
    found = values(manifest, path)
    if not found:
        return ""
    value = found[0]
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
