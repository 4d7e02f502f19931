"""Reading integers from text a person or a hub wrote.

`str.isdigit()` is true for superscripts and other Unicode digits that
`int()` refuses ("²".isdigit() is True, int("²") raises), and `int()` takes
Arabic-Indic digits, spaces and underscores that no Kubernetes field holds.
Every integer read from a query parameter, a form, a label or a
resourceVersion goes through here instead.
"""

import re

_UNSIGNED = re.compile(r"[0-9]+")
_SIGNED = re.compile(r"[+-]?[0-9]+")


def parse_unsigned(text) -> int | None:
    """The value of `text` if it is ASCII digits only (`"0"`, `"12"`), else None."""
    text = str(text)
    return int(text) if _UNSIGNED.fullmatch(text) else None


def parse_signed(text) -> int | None:
    """Like parse_unsigned, with an optional leading `+` or `-`."""
    text = str(text)
    return int(text) if _SIGNED.fullmatch(text) else None
