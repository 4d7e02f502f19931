"""Reads of API tokens (models.ApiToken): a person's list, and one by name."""

from rollouts import models as m


def tokens_of(user) -> list[m.ApiToken]:
    """`user`'s tokens, newest first, revoked ones included (they say when)."""
    return list(m.ApiToken.objects.filter(user=user).order_by("-created", "-id"))


def token_named(user, name: str) -> m.ApiToken | None:
    return m.ApiToken.objects.filter(user=user, name=name).select_related("user").first()


def token_by_id(user, pk: int) -> m.ApiToken | None:
    return m.ApiToken.objects.filter(user=user, pk=pk).select_related("user").first()
