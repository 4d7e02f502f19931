"""`Status` bodies: every refusal answered as the API server answers it
(kind Status, reason, message, details, code), so kubectl prints
`Error from server (NotFound): …`."""

from django.http import JsonResponse

from rollouts.api.errors import ApiError, Invalid

# Reasons the API server uses for codes we answer that ApiError does not name.
_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
            406: "NotAcceptable", 409: "Conflict", 410: "Expired", 415: "UnsupportedMediaType", 422: "Invalid",
            500: "InternalError"}


def status_body(code: int, message: str, *, reason: str = "", details: dict | None = None) -> dict:
    """A failure Status as a dict."""
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason or _REASONS.get(code, "Unknown"), "code": code}
    if details:
        body["details"] = details
    return body


def status_response(code: int, message: str, *, reason: str = "", details: dict | None = None) -> JsonResponse:
    """A failure Status as a response with that code."""
    response = JsonResponse(status_body(code, message, reason=reason, details=details), status=code)
    if code == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="fleet-ui"'
    return response


def error_response(error: ApiError, *, details: dict | None = None) -> JsonResponse:
    """The Status of an ApiError; Invalid carries its causes (field paths)."""
    details = dict(details or {})
    if isinstance(error, Invalid):
        details["causes"] = [{"reason": "FieldValueInvalid", "message": message, "field": path}
                             for path, message in error.causes]
        details.setdefault("name", error.name)
    return status_response(error.code, str(error), reason=error.reason, details=details or None)


def success_body(details: dict) -> dict:
    """The Status a delete of a core kind answers."""
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}
