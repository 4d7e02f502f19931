"""Who is calling the Kubernetes API, and may they do this.

Authentication: `Authorization: Bearer <token>` (services.tokens). A
signed-in browser session may read (GET) too, never write: writes come with
a token only, which is why the API views are CSRF-exempt.

Authorisation: the dashboard's roles (rollouts.roles) by what the verb
touches: reading needs VIEW; writing an update run needs OPERATE; writing an
approval request's status needs APPROVE; any other write (placements,
strategies, members, namespaces, configmaps, CRDs…) needs ADMINISTER.
Approval policies and freezes apply on top, in the services."""

from rollouts import roles
from rollouts.controllers.family import APPROVAL_KINDS, RUN_KINDS
from rollouts.services.logins import access_denied_record
from rollouts.services.tokens import token_user

from .paths import Target

VIA = "kube-api"
_VERBS = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


class Unauthorized(Exception):
    pass


def authenticate(request):
    """The user a request speaks for (sets request.user), or Unauthorized."""
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        user = token_user(header[7:].strip())
        if user is None:
            raise Unauthorized("Unauthorized")
        request.user = user
        return user
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and request.method in ("GET", "HEAD"):
        return user
    raise Unauthorized("Unauthorized")


def permission_for(method: str, target: Target) -> str:
    """The role permission a request on `target` needs."""
    if method in ("GET", "HEAD"):
        return roles.VIEW
    if target.kind.kind in RUN_KINDS:
        return roles.OPERATE
    if target.kind.kind in APPROVAL_KINDS and target.subresource == "status":
        return roles.APPROVE
    return roles.ADMINISTER


def refusal(request, target: Target, list_call: bool) -> str:
    """'' when the user may; else the API server's Forbidden message (and a
    write's refusal is audited as `denied`)."""
    perm = permission_for(request.method, target)
    if request.user.has_perm(perm):
        return ""
    verb = "list" if list_call and request.method == "GET" else _VERBS.get(request.method, request.method.lower())
    resource = target.kind.plural + (f"/{target.subresource}" if target.subresource else "")
    scope = f'in the namespace "{target.namespace}"' if target.namespace else "at the cluster scope"
    subject = f'{target.kind.resource} "{target.name}"' if target.name else target.kind.resource
    message = (f'{subject} is forbidden: User "{request.user.get_username()}" cannot {verb} resource "{resource}" '
               f'in API group "{target.group}" {scope}: you need the {perm} permission')
    if request.method not in ("GET", "HEAD"):
        access_denied_record(request, reason=f"you need the {perm} permission ({VIA})")
    return message
