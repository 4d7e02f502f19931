"""Reading manifests: YAML or JSON text in, a list of plain dicts out.

Everything a person can type is handled: broken YAML, a scalar where an object
belongs, empty documents, YAML bombs, huge input. Errors are one line.
"""

import json

import yaml

from .errors import BadRequest

MAX_BYTES = 3 * 1024 * 1024  # the API server's request size limit
MAX_DOCUMENTS = 1000
MAX_ALIASES = 100  # anchors/aliases are legal YAML; expansion bombs are not


MAX_DEPTH = 100


class _CountingLoader(yaml.SafeLoader):
    """A safe loader that refuses alias-expansion bombs and, like Kubernetes'
    YAML-to-JSON conversion, keeps timestamps as strings."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self._aliases = getattr(self, "_aliases", 0) + 1
            if self._aliases > MAX_ALIASES:
                raise BadRequest(f"error parsing manifest: more than {MAX_ALIASES} YAML aliases")
        return super().compose_node(parent, index)


_CountingLoader.yaml_implicit_resolvers = {
    first: [r for r in resolvers if r[0] != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _jsonable(value, source: str, depth: int = 0):
    """The value as plain JSON data, or BadRequest for what JSON cannot hold."""
    if depth > MAX_DEPTH:
        raise BadRequest(f"error parsing {source}: nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if isinstance(key, bool | int | float) and not isinstance(key, str):
                key = str(key).lower() if isinstance(key, bool) else str(key)
            if not isinstance(key, str):
                raise BadRequest(f"error parsing {source}: a key is not a string: {key!r}")
            out[key] = _jsonable(item, source, depth + 1)
        return out
    if isinstance(value, list):
        return [_jsonable(item, source, depth + 1) for item in value]
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        raise BadRequest(f"error parsing {source}: {value} is not a JSON number")
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise BadRequest(f"error parsing {source}: unsupported value of type {type(value).__name__}")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def parse_documents(text: str | bytes, source: str = "<stdin>") -> list[dict]:
    """Every non-empty document in `text`, each a dict with apiVersion and kind.

    A `kind: List` document is flattened into its items, as kubectl does."""
    if isinstance(text, bytes):
        if len(text) > MAX_BYTES:
            raise BadRequest(f"error parsing {source}: input is larger than {MAX_BYTES} bytes")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest(f"error parsing {source}: input is not UTF-8 text") from None
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise BadRequest(f"error parsing {source}: input is larger than {MAX_BYTES} bytes")
    raw_docs = _load(text, source)
    docs: list[dict] = []
    for position, doc in enumerate(raw_docs, start=1):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise BadRequest(f"error parsing {source}: document {position} is not an object")
        if doc.get("kind") == "List" and isinstance(doc.get("items"), list):
            items = doc["items"]
        else:
            items = [doc]
        for item in items:
            docs.append(_check_envelope(item, source, position))
    if len(docs) > MAX_DOCUMENTS:
        raise BadRequest(f"error parsing {source}: more than {MAX_DOCUMENTS} documents")
    return docs


def _load(text: str, source: str) -> list:
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            value = json.loads(text)
            docs = value if isinstance(value, list) and stripped.startswith("[") else [value]
            return _jsonable(docs, source)
        except (ValueError, RecursionError):
            pass  # not JSON after all (or a number JSON cannot hold): YAML says what is wrong
    try:
        return _jsonable(list(yaml.load_all(text, Loader=_CountingLoader)), source)
    except BadRequest:
        raise
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or exc
        raise BadRequest(f"error parsing {source}: {_one_line(problem)}{where}") from None
    except Exception as exc:  # PyYAML's constructors crash on some tagged scalars (`!!int _`)
        raise BadRequest(f"error parsing {source}: {_one_line(exc) or type(exc).__name__}") from None


def _check_envelope(doc, source: str, position: int) -> dict:
    if not isinstance(doc, dict):
        raise BadRequest(f"error parsing {source}: document {position} is not an object")
    for key in doc:
        if not isinstance(key, str):
            raise BadRequest(f"error parsing {source}: document {position} has a non-string key {key!r}")
    api_version, kind = doc.get("apiVersion"), doc.get("kind")
    if not api_version or not isinstance(api_version, str):
        raise BadRequest(f"error validating {source}: document {position}: apiVersion not set")
    if not kind or not isinstance(kind, str):
        raise BadRequest(f"error validating {source}: document {position}: kind not set")
    meta = doc.get("metadata")
    if meta is not None and not isinstance(meta, dict):
        raise BadRequest(f"error validating {source}: document {position}: metadata must be an object")
    return doc


def parse_patch(text: str) -> object:
    """A patch body: JSON, or YAML as kubectl also accepts."""
    try:
        return _jsonable(json.loads(text), "the patch")
    except (ValueError, RecursionError):
        pass
    try:
        value = _jsonable(yaml.load(text, Loader=_CountingLoader), "the patch")
    except BadRequest:
        raise
    except Exception as exc:  # as in _load: any constructor crash is bad input
        raise BadRequest(f"unable to parse the patch: {_one_line(getattr(exc, 'problem', None) or exc)}") from None
    if value is None:
        raise BadRequest("unable to parse the patch: it is empty")
    return value
