"""Django's auth signals and account changes, recorded in the audit log and
told to open sockets.

Auth signals are the one hook for logins made by any view (ours and the
admin's). Account changes (a user's groups, permissions and active, staff
and superuser flags; a group's permissions) are recorded by model signal
receivers on purpose, not by the code that makes them: they are made by the
Django admin, by `user_create`, by a shell, and by an OIDC sign-in that
assigns groups through the ORM, and the audit must catch every path. A
receiver is the one place each of those passes through (a bulk `update()` or
raw SQL does not; the hash chain cannot see those either). The actor is the
signed-in person of the request being served (rollouts.current_request),
else `system`. The same changes make that user's open sockets check their
access again (changes.AccountChanged); a logout closes the session's (changes.SessionEnded).
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import m2m_changed, post_save, pre_save
from django.dispatch import receiver

from rollouts import changes
from rollouts import models as m
from rollouts.current_request import request_actor
from rollouts.roles import client_address
from rollouts.selectors.preferences import THEME_SESSION_KEY, preference_theme
from rollouts.services.events import record
from rollouts.services.logins import USER_KIND, login_record
from rollouts.sessions import session_touch
from rollouts.sso import OIDC_BACKEND, VIA

User = get_user_model()
GROUP_KIND = "Group"
WATCHED_FLAGS = ("is_active", "is_staff", "is_superuser")


def _address(request) -> str:
    return client_address(request) if request is not None else ""


def _via(user) -> str:
    """`oidc` for a single sign-on (authenticate() names the backend on the
    user); '' for the password form, whose rows stay as they were."""
    return VIA if getattr(user, "backend", "") == OIDC_BACKEND else ""


@receiver(user_logged_in, dispatch_uid="rollouts-audit-login")
def _logged_in(sender, request, user, **kwargs):
    if request is not None and hasattr(request, "session"):
        session_touch(request.session)  # saved with the login's own session write
        request.session[THEME_SESSION_KEY] = preference_theme(user)  # pages read it from here
    login_record(action=m.Event.Action.LOGIN, username=user.get_username(), client_address=_address(request),
                 via=_via(user))


@receiver(user_logged_out, dispatch_uid="rollouts-audit-logout")
def _logged_out(sender, request, user, **kwargs):
    if user is not None:  # logging out with no session changes nothing
        login_record(action=m.Event.Action.LOGOUT, username=user.get_username(), client_address=_address(request))
    session = getattr(request, "session", None)
    if getattr(session, "session_key", None):
        changes.publish(changes.SessionEnded(session.session_key))


@receiver(user_login_failed, dispatch_uid="rollouts-audit-login-failed")
def _login_failed(sender, credentials, request=None, **kwargs):
    if "username" not in credentials:
        return  # an OIDC callback: rollouts.views.sso records it with the precise reason
    login_record(action=m.Event.Action.LOGIN_FAILED, username=str(credentials.get("username") or ""),
                 client_address=_address(request), reason="InvalidCredentials")


# Account changes ----------------------------------------------------------------------------------


def _account_event(*, kind_name: str, name: str, action: str, changes: dict) -> None:
    actor, details = request_actor()
    record(actor=actor, action=action, kind_name=kind_name, name=name, details={"changes": changes, **details})


@receiver(pre_save, sender=User, dispatch_uid="rollouts-account-before")
def _account_before(sender, instance, raw=False, update_fields=None, **kwargs):
    """Remember the flags and password hash as stored, for post_save to compare
    (not for a save of other fields only, such as a login's last_login)."""
    if update_fields is not None and not set(update_fields) & {*WATCHED_FLAGS, "password"}:
        instance._fleet_before = None
        return
    if raw or instance.pk is None:
        instance._fleet_before = None
        return
    instance._fleet_before = (User.objects.filter(pk=instance.pk)
                              .values(*WATCHED_FLAGS, "password").first())


@receiver(post_save, sender=User, dispatch_uid="rollouts-account-saved")
def _account_saved(sender, instance, created, raw=False, **kwargs):
    before = getattr(instance, "_fleet_before", None)
    if raw or (before is None and not created):  # a save of other fields only
        return
    before = before or {}
    changed = {flag: [before.get(flag), getattr(instance, flag)] for flag in WATCHED_FLAGS
               if created or before.get(flag) != getattr(instance, flag)}
    if before and before.get("password") != instance.password:
        changed["password"] = "changed"  # never the hash
    if created:
        _account_event(kind_name=USER_KIND, name=instance.get_username(), action=m.Event.Action.CREATED,
                       changes=changed)
    elif changed:
        _account_event(kind_name=USER_KIND, name=instance.get_username(), action=m.Event.Action.CONFIGURED,
                       changes=changed)
        changes.publish(changes.AccountChanged((instance.pk,)))


def _names(model, pks) -> list[str]:
    if model is Permission:
        rows = model.objects.filter(pk__in=pks).values_list("content_type__app_label", "codename")
        return sorted(f"{app}.{codename}" for app, codename in rows)
    field = "username" if model is User else "name"
    return sorted(model.objects.filter(pk__in=pks).values_list(field, flat=True))


def _m2m_changed(*, instance, action: str, reverse: bool, model, pk_set, owner_kind, owner,
                 relation: str) -> list[int]:
    """Record one m2m change of `owner` objects (users or groups) and return
    the pks of the users it concerns (for sockets_recheck). `reverse`: the
    change was made from the other side (group.user_set.add(user))."""
    if action == "pre_clear":  # post_clear no longer knows what was there
        related = getattr(instance, _REVERSE[relation] if reverse else relation)
        instance._fleet_cleared = list(related.values_list("pk", flat=True))
        return []
    if action not in ("post_add", "post_remove", "post_clear"):
        return []
    verb = {"post_add": "added", "post_remove": "removed", "post_clear": "removed"}[action]
    pks = getattr(instance, "_fleet_cleared", []) if action == "post_clear" else list(pk_set or [])
    if not pks:
        return []
    if not reverse:
        owners, others = [instance], _names(model, pks)
    else:  # instance is on the other side: each pk is an owner that changed
        owners, others = list(owner.objects.filter(pk__in=pks)), [_display(instance)]
    for obj in owners:
        _account_event(kind_name=owner_kind, name=_display(obj), action=m.Event.Action.CONFIGURED,
                       changes={relation: {verb: others}})
    return [o.pk for o in owners]


def _display(obj) -> str:
    if isinstance(obj, Permission):
        return f"{obj.content_type.app_label}.{obj.codename}"
    return obj.get_username() if isinstance(obj, User) else obj.name


_REVERSE = {"groups": "user_set", "user_permissions": "user_set", "permissions": "group_set"}


@receiver(m2m_changed, sender=User.groups.through, dispatch_uid="rollouts-account-groups")
def _groups_changed(sender, instance, action, reverse, model, pk_set, **kwargs):
    users = _m2m_changed(instance=instance, action=action, reverse=reverse, model=model, pk_set=pk_set,
                         owner_kind=USER_KIND, owner=User, relation="groups")
    if users:
        changes.publish(changes.AccountChanged(tuple(users)))


@receiver(m2m_changed, sender=User.user_permissions.through, dispatch_uid="rollouts-account-permissions")
def _user_permissions_changed(sender, instance, action, reverse, model, pk_set, **kwargs):
    users = _m2m_changed(instance=instance, action=action, reverse=reverse, model=model, pk_set=pk_set,
                         owner_kind=USER_KIND, owner=User, relation="user_permissions")
    if users:
        changes.publish(changes.AccountChanged(tuple(users)))


@receiver(m2m_changed, sender=Group.permissions.through, dispatch_uid="rollouts-group-permissions")
def _group_permissions_changed(sender, instance, action, reverse, model, pk_set, **kwargs):
    groups = _m2m_changed(instance=instance, action=action, reverse=reverse, model=model, pk_set=pk_set,
                          owner_kind=GROUP_KIND, owner=Group, relation="permissions")
    if groups:
        users = User.objects.filter(groups__in=groups).values_list("pk", flat=True)
        changes.publish(changes.AccountChanged(tuple(users)))
