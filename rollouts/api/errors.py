"""The API's error vocabulary, worded as the Kubernetes API server words them.

Every error a person can cause is one of these; the CLI prints `str(error)` as
one line and exits non-zero, the web shows it in the page.
"""


class ApiError(Exception):
    """Base class: a request the hub refused. `str()` is the one-line message."""

    code = 400
    reason = "BadRequest"


class BadRequest(ApiError):
    pass


class Invalid(ApiError):
    """The object fails validation; the message names the field path."""

    code = 422
    reason = "Invalid"

    def __init__(self, kind: str, name: str, causes: list[tuple[str, str]]):
        self.kind, self.name, self.causes = kind, name, causes
        detail = "; ".join(f"{path}: {msg}" if path else msg for path, msg in causes)
        super().__init__(f'{kind} "{name}" is invalid: {detail}')


class NotFound(ApiError):
    code = 404
    reason = "NotFound"

    def __init__(self, resource: str, name: str):
        super().__init__(f'{resource} "{name}" not found')


class AlreadyExists(ApiError):
    code = 409
    reason = "AlreadyExists"

    def __init__(self, resource: str, name: str):
        super().__init__(f'{resource} "{name}" already exists')


class Conflict(ApiError):
    """A write carried a stale resourceVersion (optimistic concurrency)."""

    code = 409
    reason = "Conflict"

    def __init__(self, resource: str, name: str):
        super().__init__(
            f'Operation cannot be fulfilled on {resource} "{name}": the object has been modified; '
            "please apply your changes to the latest version and try again"
        )


class UnknownKind(ApiError):
    code = 404
    reason = "NotFound"


class Forbidden(ApiError):
    code = 403
    reason = "Forbidden"
