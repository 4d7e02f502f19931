"""Schema nodes that read like a CRD's OpenAPI schema, and how values and
paths are shown in their messages."""

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

Causes = list[tuple[str, str]]


# --- how values and paths are shown -----------------------------------------

_PLAIN_FIELD = re.compile(r"[A-Za-z0-9_-]+")
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_./-]+")


# bool before int: True is an int to Python, a boolean to JSON.
_JSON_TYPES = ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"))
_JSON_TYPES += ((list, "array"), (dict, "object"))


def _type_of(value) -> str:
    """The OpenAPI type name of a JSON value, as the API server reports it."""
    for py_type, name in _JSON_TYPES:
        if isinstance(value, py_type):
            return name
    return "null" if value is None else type(value).__name__


def name_of(manifest):
    """metadata.name as given (any type), None when there is no metadata object."""
    meta = manifest.get("metadata") if isinstance(manifest, dict) else None
    return meta.get("name") if isinstance(meta, dict) else None


_SHOWN_CHARS = 128  # a pasted blob would otherwise fill the one-line error


def show(value) -> str:
    """A scalar as JSON (quoted, escaped, one line, long strings cut); anything else by its type."""
    if isinstance(value, str) and len(value) > _SHOWN_CHARS:
        return json.dumps(value[:_SHOWN_CHARS] + "...")
    if isinstance(value, str | int | float | bool):
        try:
            return json.dumps(value)
        except ValueError:  # an int past Python's digit limit for str()
            pass
    return f'"{_type_of(value)}"'


def child(path: str, name) -> str:
    """The path of an object field: `spec.stages`."""
    name = name if isinstance(name, str) else f"<{_type_of(name)}>"
    if not _PLAIN_FIELD.fullmatch(name):
        return f"{path}[{json.dumps(name)}]"
    return f"{path}.{name}" if path else name


def _entry(path: str, key) -> str:
    """The path of a map entry: `data[app.conf]`."""
    key = key if isinstance(key, str) else f"<{_type_of(key)}>"
    return f"{path}[{key}]" if _PLAIN_KEY.fullmatch(key) else f"{path}[{json.dumps(key)}]"


def _wrong_type(value, path: str, expected: str) -> str:
    return f'Invalid value: "{_type_of(value)}": {path} in body must be of type {expected}'


def invalid(value, text: str) -> str:
    """A schema message about a value: `Invalid value: "a-b": <text>`."""
    return f"Invalid value: {show(value)}: {text}"


def rule_failed(value, message: str) -> str:
    """A CEL rule's message as the API server words it."""
    return f'Invalid value: "{_type_of(value)}": {message}'


# --- schema nodes ----------------------------------------------------------------


class _Node:
    """A piece of OpenAPI schema. check() appends what is wrong to causes."""

    json_type = "object"

    def accepts(self, value) -> bool:
        return isinstance(value, dict)

    def check(self, value, path: str, causes: Causes) -> None:
        if self.accepts(value):
            self.check_value(value, path, causes)
        else:
            causes.append((path, _wrong_type(value, path, self.json_type)))

    def check_value(self, value, path: str, causes: Causes) -> None:
        pass


class Anything(_Node):
    def accepts(self, value) -> bool:
        return True


@dataclass(frozen=True, eq=False)
class Str(_Node):
    """A string; `check_fn` returns a problem (str) or None for formats."""

    enum: tuple[str, ...] = ()
    max_len: int | None = None
    pattern: str | None = None
    check_fn: Callable[[str], str | None] | None = None
    json_type = "string"

    def accepts(self, value) -> bool:
        return isinstance(value, str)

    def check_value(self, value, path, causes):
        if self.enum and value not in self.enum:
            supported = ", ".join(json.dumps(v) for v in self.enum if v)
            causes.append(
                (path, f"Unsupported value: {show(value)}: supported values: {supported}")
            )
            return
        if self.max_len is not None and len(value) > self.max_len:
            causes.append((path, f"Too long: may not be more than {self.max_len} characters"))
        if self.pattern and not re.fullmatch(self.pattern, value):
            causes.append((path, invalid(value, f"{path} in body should match '{self.pattern}'")))
        if self.check_fn and (problem := self.check_fn(value)):
            causes.append((path, invalid(value, problem)))


class Base64(Str):
    """Base64 data (Secret.data): the message never repeats the value, a secret."""

    def check_value(self, value, path, causes):
        try:
            base64.b64decode(value, validate=True)
        except ValueError:  # binascii.Error, and non-ASCII text
            causes.append((path, 'Invalid value: "string": illegal base64 data'))


@dataclass(frozen=True, eq=False)
class Int(_Node):
    minimum: int | None = None
    maximum: int | None = None
    json_type = "integer"

    def accepts(self, value) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    def check_value(self, value, path, causes):
        if self.minimum is not None and value < self.minimum:
            text = f"{path} in body should be greater than or equal to {self.minimum}"
            causes.append((path, invalid(value, text)))
        if self.maximum is not None and value > self.maximum:
            text = f"{path} in body should be less than or equal to {self.maximum}"
            causes.append((path, invalid(value, text)))


@dataclass(frozen=True, eq=False)
class ListOf(_Node):
    item: _Node = field(default_factory=Anything)
    min_items: int = 0
    max_items: int | None = None
    json_type = "array"

    def accepts(self, value) -> bool:
        return isinstance(value, list)

    def check_value(self, value, path, causes):
        count = len(value)
        if count < self.min_items:
            text = f"{path} in body should have at least {self.min_items} items"
            causes.append((path, invalid(count, text)))
        if self.max_items is not None and count > self.max_items:
            causes.append((path, f"Too many: {count}: must have at most {self.max_items} items"))
        for index, item in enumerate(value):
            self.item.check(item, f"{path}[{index}]", causes)


@dataclass(frozen=True, eq=False)
class MapOf(_Node):
    """A map with string keys (checked by key_fn) and values of one schema."""

    value: _Node = field(default_factory=Anything)
    key_fn: Callable[[object], str | None] | None = None
    max_bytes: int | None = None

    def check_value(self, value, path, causes):
        for key, item in value.items():
            if self.key_fn and (problem := self.key_fn(key)):
                causes.append((path, invalid(key, problem)))
            self.value.check(item, _entry(path, key), causes)
        if self.max_bytes is not None and _size(value) > self.max_bytes:
            causes.append((path, f"Too long: must have at most {self.max_bytes} bytes"))


@dataclass(frozen=True, eq=False)
class Obj(_Node):
    """An object. null counts as absent and "" as missing for a required field.
    `closed` rejects unknown fields (the API server would prune them silently;
    we refuse them so a typo surfaces). `rules` run only once the object's own
    subtree passed the schema, as CEL rules can rely on types."""

    fields: dict[str, _Node] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    closed: bool = False
    rules: tuple[Callable[[dict, str, Causes], None], ...] = ()

    def check_value(self, value, path, causes):
        before = len(causes)
        for name in self.required:
            if value.get(name) is None or value.get(name) == "":
                causes.append((child(path, name), "Required value"))
        for name, item in value.items():
            schema = self.fields.get(name)
            if schema is None and self.closed:
                where = child(path, name)
                causes.append((where, f"unknown field {json.dumps(where)}"))
            elif schema is not None and item is not None:
                schema.check(item, child(path, name), causes)
        if len(causes) == before:
            for rule in self.rules:
                rule(value, path, causes)


def _size(mapping: dict) -> int:
    """Bytes of a string map's keys and values, as the 256 KiB annotation limit counts them."""
    strings = [s for pair in mapping.items() for s in pair if isinstance(s, str)]
    return sum(len(s.encode("utf-8", "surrogatepass")) for s in strings)


