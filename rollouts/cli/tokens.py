"""`fleet tokens create|list|revoke`: a person's API tokens for kubectl
(docs/kube-api.md), through the same services as the dashboard's page."""

from pathlib import Path

from rollouts.api.errors import BadRequest, NotFound
from rollouts.kubeapi.kubeconfig_file import kubeconfig_text, server_url
from rollouts.selectors.tokens import token_named, tokens_of
from rollouts.services.tokens import TokenError, token_create, token_revoke, user_by_name

from . import printers


def tokens_command(ctx) -> None:
    """tokens create|list|revoke for --user (default: --as)."""
    try:
        user = user_by_name(ctx.options.get("user") or ctx.actor)
        {"create": _create, "list": _list, "revoke": _revoke}[ctx.options["action"]](ctx, user)
    except TokenError as exc:
        raise BadRequest(str(exc)) from None


def _create(ctx, user) -> None:
    name = ctx.options.get("name") or ""
    token, secret = token_create(user=user, name=name, actor=ctx.actor, via="cli")
    path = ctx.options.get("kubeconfig")
    if path:
        text = kubeconfig_text(username=user.get_username(), token=secret,
                               server=ctx.options.get("server") or server_url())
        Path(path).write_text(text)
        Path(path).chmod(0o600)
        ctx.out.write(f"token {token.name} created for {user.get_username()}: kubeconfig written to {path}")
        return
    ctx.out.write(f"token {token.name} created for {user.get_username()} (shown once, keep it secret):")
    ctx.out.write(secret)


def _list(ctx, user) -> None:
    rows = [["NAME", "PREFIX", "CREATED", "LAST-USED", "REVOKED"]]
    for token in tokens_of(user):
        rows.append([token.name, token.prefix, printers.age(token.created) + " ago",
                     printers.age(token.last_used) + " ago" if token.last_used else "<never>",
                     printers.age(token.revoked) + " ago" if token.revoked else "<no>"])
    ctx.out.write(printers.format_table(rows) if len(rows) > 1 else f"No tokens for {user.get_username()}")


def _revoke(ctx, user) -> None:
    name = ctx.options.get("name") or ""
    token = token_named(user, name)
    if token is None:
        raise NotFound("tokens", name)
    revoked = token_revoke(token=token, actor=ctx.actor, via="cli")
    ctx.out.write(f"token {name} {'revoked' if revoked else 'was already revoked'}")
