"""API tokens: a person's page under settings to make, download and revoke
the tokens kubectl uses (docs/kube-api.md). A token acts with its owner's
role; the secret is shown once (or downloaded once inside a kubeconfig)."""

from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from rollouts import roles
from rollouts.kubeapi.kubeconfig_file import kubeconfig_text, server_url
from rollouts.selectors.tokens import token_by_id, tokens_of
from rollouts.services.tokens import TokenError, token_create, token_revoke

from .helpers import notify_or_redirect, page

TEMPLATE = "rollouts/token_settings.html"


@roles.requires(roles.VIEW)
def token_settings(request):
    """GET: the person's tokens. POST: make one; the secret is on the answer
    only (shown once), or with `download` the answer is a kubeconfig file."""
    if request.method != "POST":
        return page(request, TEMPLATE, {"tokens": tokens_of(request.user), "server": server_url(request)})
    try:
        token, secret = token_create(user=request.user, name=request.POST.get("name", ""),
                                     actor=request.user.get_username(), via="web")
    except TokenError as exc:
        return page(request, TEMPLATE, {"tokens": tokens_of(request.user), "server": server_url(request),
                                        "error": str(exc)}, status=400)
    if request.POST.get("download"):
        text = kubeconfig_text(username=request.user.get_username(), token=secret, server=server_url(request))
        response = HttpResponse(text, content_type="application/yaml")
        response["Content-Disposition"] = f'attachment; filename="fleet-ui-{token.name}.kubeconfig"'
        return response
    return page(request, TEMPLATE, {"tokens": tokens_of(request.user), "server": server_url(request),
                                    "created": token, "secret": secret}, status=201)


@require_POST
@roles.requires(roles.VIEW)
def token_revoke_view(request, pk: int):
    token = token_by_id(request.user, pk)
    if token is None:
        raise Http404("no such token of yours")
    token_revoke(token=token, actor=request.user.get_username(), via="web")
    return notify_or_redirect(request, "success", f"Token {token.name} revoked.", reverse("rollouts:tokens"),
                              lambda ctx: redirect("rollouts:tokens"))
