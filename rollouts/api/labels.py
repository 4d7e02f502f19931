"""Label selectors: the `-l` string form and the LabelSelector object form."""

import re

from .errors import BadRequest

_REQ = re.compile(
    r"^\s*(?P<neg>!)?\s*(?P<key>[A-Za-z0-9_./-]+)\s*"
    r"(?:(?P<op>==|=|!=|\s+in\s+|\s+notin\s+)\s*(?P<val>\([^)]*\)|[A-Za-z0-9_.-]*))?\s*$"
)


def _split_requirements(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p for p in parts if p.strip()]


def parse_selector(text: str) -> dict:
    """Turn `a=b,c!=d,e in (f,g),!h,i` into a LabelSelector dict."""
    match_labels, exprs = {}, []
    for part in _split_requirements(text or ""):
        found = _REQ.match(part)
        if not found:
            raise BadRequest(f"unable to parse requirement: {part.strip()!r}")
        key, op, val, neg = found["key"], (found["op"] or "").strip(), found["val"], found["neg"]
        if neg:
            if op:
                raise BadRequest(f"unable to parse requirement: {part.strip()!r}")
            exprs.append({"key": key, "operator": "DoesNotExist"})
        elif not op:
            exprs.append({"key": key, "operator": "Exists"})
        elif op in ("=", "=="):
            match_labels[key] = val
        elif op == "!=":
            exprs.append({"key": key, "operator": "NotIn", "values": [val]})
        else:
            values = [v.strip() for v in val.strip("()").split(",") if v.strip()]
            exprs.append({"key": key, "operator": "In" if op == "in" else "NotIn", "values": values})
    selector = {}
    if match_labels:
        selector["matchLabels"] = match_labels
    if exprs:
        selector["matchExpressions"] = exprs
    return selector


def selector_problem(selector) -> str | None:
    """Why a LabelSelector object is malformed, or None when it is fine."""
    if selector is None:
        return None
    if not isinstance(selector, dict):
        return "must be an object"
    labels = selector.get("matchLabels") or {}
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        return "matchLabels must map strings to strings"
    for expr in selector.get("matchExpressions") or []:
        if not isinstance(expr, dict) or not isinstance(expr.get("key"), str):
            return "matchExpressions entries need a key"
        op, values = expr.get("operator"), expr.get("values") or []
        if op in ("In", "NotIn") and not values:
            return f"values: Required value: must be specified when `operator` is '{op}'"
        if op in ("Exists", "DoesNotExist") and values:
            return f"values: Forbidden: may not be specified when `operator` is '{op}'"
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return f'operator: Unsupported value: "{op}"'
    return None


def selector_matches(selector: dict | None, labels: dict) -> bool:
    """Whether labels satisfy a LabelSelector. None matches nothing; {} matches all."""
    if selector is None:
        return False
    labels = labels or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True
