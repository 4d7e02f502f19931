"""How a failed `fleet` command reports itself: one line on stderr, as
kubectl words it, and an exit code (1 for a refused request, 2 for a bug)."""

from rollouts.api.errors import ApiError, UnknownKind


class CliError(Exception):
    """A mistake the client itself detects (a missing file, a bad flag).

    `str()` is the one-line message; it is printed after `error: `."""


def format_error(exc: Exception) -> str:
    """The one line kubectl would print for this error.

    Requests the server refused for what they say (NotFound, Invalid,
    Conflict…) read `Error from server (<reason>): …`; requests it could not
    understand, and client-side mistakes, read `error: …`."""
    message = one_line(str(exc))
    if isinstance(exc, CliError | UnknownKind) or getattr(exc, "reason", "") == "BadRequest":
        return f"error: {message}"
    if isinstance(exc, ApiError):
        return f"Error from server ({exc.reason}): {message}"
    return f"error: internal error: {type(exc).__name__}: {message} (re-run with --traceback for details)"


def one_line(text: str) -> str:
    # Messages quote what people typed; a newline in there must not break the
    # one-line-per-error contract scripts rely on.
    return " ".join(text.splitlines()).strip()
