"""Formats: object names, label keys and values, annotation and config keys,
dates (the API server's own checks, with its messages)."""

import re
from datetime import datetime

# --- formats: names, label keys and values, dates, base64 -----------------------------

_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_LABEL_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_CONFIG_KEY = re.compile(r"[-._a-zA-Z0-9]+")
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def subdomain_problem(value: str) -> str | None:
    if len(value) > 253:
        return "must be no more than 253 characters"
    if not _SUBDOMAIN.fullmatch(value):
        return (
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
            "'-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com')"
        )
    return None


def dns_label_problem(value: str) -> str | None:
    if len(value) > 63:
        return "must be no more than 63 characters"
    if not _DNS_LABEL.fullmatch(value):
        return (
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
            "and must start and end with an alphanumeric character (e.g. 'my-name', or '123-abc')"
        )
    return None


def qualified_name_problem(key) -> str | None:
    """Why `key` is not a `[prefix/]name` label key, or None."""
    if not isinstance(key, str):
        return "a key must be a string"
    prefix, slash, name = key.rpartition("/")
    if slash and not prefix:
        return "prefix part must be non-empty"
    if "/" in prefix:
        return (
            "a qualified name must be a name with an optional DNS subdomain prefix and '/' "
            "(e.g. 'example.com/MyName')"
        )
    if prefix and (problem := subdomain_problem(prefix)):
        return f"prefix part {problem}"
    if len(name) > 63:
        return "name part must be no more than 63 characters"
    if not _LABEL_NAME.fullmatch(name):
        return (
            "name part must consist of alphanumeric characters, '-', '_' or '.', "
            "and must start and end with an alphanumeric character"
        )
    return None


def annotation_key_problem(key) -> str | None:
    # The API server checks annotation keys lower-cased: upper case is allowed.
    return qualified_name_problem(key.lower() if isinstance(key, str) else key)


def label_value_problem(value: str) -> str | None:
    if len(value) > 63:
        return "must be no more than 63 characters"
    if value and not _LABEL_NAME.fullmatch(value):
        return (
            "a valid label must be an empty string or consist of alphanumeric characters, "
            "'-', '_' or '.', and must start and end with an alphanumeric character"
        )
    return None


def config_key_problem(key) -> str | None:
    valid = isinstance(key, str) and len(key) <= 253 and _CONFIG_KEY.fullmatch(key)
    if not valid or key.startswith(".."):
        return (
            "a valid config key must consist of alphanumeric characters, '-', '_' or '.' "
            "(e.g. 'key.name', or 'KEY_NAME', or 'key-name')"
        )
    return None


def date_time_problem(value: str) -> str | None:
    if _RFC3339.fullmatch(value):
        try:
            datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
            return None
        except ValueError:
            pass
    return "must be an RFC 3339 date-time (e.g. 2025-01-02T15:04:05Z)"


