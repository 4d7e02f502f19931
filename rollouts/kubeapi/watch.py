"""Watch (placeholder): replaced by the hub-wide change log's watch."""

from .status import status_response


def watch_response(request, kind, namespace, params):
    """Answer a `watch=true` list; not served yet."""
    return status_response(405, "watch is not supported yet", reason="MethodNotAllowed")


def list_resource_version(objs=()) -> str:
    """The resourceVersion a list reports: the newest of its objects ("0" for
    none). The hub-wide change log replaces this with its own counter."""
    return str(max((obj.resource_version for obj in objs), default=0))
