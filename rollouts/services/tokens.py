"""API tokens: made, revoked and checked (models.ApiToken, docs/kube-api.md).

A token is `fleet_` + 40 random URL-safe characters; the row keeps its first
12 characters (the prefix, to list and find it) and the sha256 of the whole.
Making and revoking one is audited (kind ApiToken, the token's owner and
name); checking one is not (every kubectl call would write a row)."""

import hashlib
import secrets
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import transaction

from rollouts import clock
from rollouts import models as m

from .events import record

TOKEN_KIND = "ApiToken"
PREFIX_LENGTH = 12
_MARK = "fleet_"
# last_used is a hint for people, not a log: write it at most this often.
_TOUCH_EVERY = timedelta(minutes=1)
_NAME_MAX = m.ApiToken._meta.get_field("name").max_length


class TokenError(ValueError):
    """A token that cannot be made or revoked; the message names the field."""


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def token_create(*, user, name: str, actor: str, via: str = "") -> tuple[m.ApiToken, str]:
    """Make a token for `user` called `name`. Returns (row, secret): the
    secret exists only in this return value. TokenError for an empty, too
    long or already used name."""
    name = (name or "").strip()
    if not name or len(name) > _NAME_MAX:
        raise TokenError(f"name: must be 1 to {_NAME_MAX} characters")
    secret = _MARK + secrets.token_urlsafe(30)
    with transaction.atomic():
        if m.ApiToken.objects.filter(user=user, name=name).exists():
            raise TokenError(f'name: {user.get_username()} already has a token called "{name}"')
        token = m.ApiToken.objects.create(user=user, name=name, prefix=secret[:PREFIX_LENGTH],
                                          hashed_secret=_hash(secret), created=clock.now())
        record(actor=actor, action=m.Event.Action.CREATED, kind_name=TOKEN_KIND, name=name,
               details={"user": user.get_username(), "prefix": token.prefix, **({"via": via} if via else {})})
    return token, secret


def token_revoke(*, token: m.ApiToken, actor: str, via: str = "") -> bool:
    """Revoke `token` for good. Returns False when it already was."""
    with transaction.atomic():
        revoked = m.ApiToken.objects.filter(pk=token.pk, revoked__isnull=True).update(revoked=clock.now())
        if revoked:
            record(actor=actor, action=m.Event.Action.DELETED, kind_name=TOKEN_KIND, name=token.name,
                   details={"user": token.user.get_username(), "prefix": token.prefix,
                            **({"via": via} if via else {})})
    return bool(revoked)


def token_user(secret: str):
    """The active user a bearer token belongs to, or None (unknown, revoked,
    or its user inactive). Notes when the token was last used."""
    if not secret.startswith(_MARK) or len(secret) > 200:
        return None
    token = (m.ApiToken.objects.select_related("user")
             .filter(prefix=secret[:PREFIX_LENGTH], hashed_secret=_hash(secret), revoked__isnull=True).first())
    if token is None or not token.user.is_active:
        return None
    now = clock.now()
    if token.last_used is None or now - token.last_used > _TOUCH_EVERY:
        m.ApiToken.objects.filter(pk=token.pk).update(last_used=now)
    return token.user


def user_by_name(username: str):
    """The user called `username`, or TokenError naming the field."""
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise TokenError(f'user: no user called "{username}"')
    return user
