"""Who may do what in the dashboard: three roles as Django groups.

    viewers           read every page and export the audit log
    release managers  also approve stage gates, stop and resume runs, start
                      a run or a rollback
    admins            everything, plus the Django admin (is_staff)

The groups and their permissions are created by migration 0003_roles; the
names and codenames below must match it. Views check permissions on the
server with `requires()`; templates only hide what a person may not use.
"""

import secrets
from functools import wraps

from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied

from rollouts.models import ClusterStagedUpdateRun
from rollouts.services.logins import access_denied_record, client_address  # noqa: F401 (client_address re-exported)

VIEW = "rollouts.view_fleet"
APPROVE = "rollouts.approve_stage"
OPERATE = "rollouts.operate_run"
ADMINISTER = "rollouts.administer_fleet"

VIEWERS = "viewers"
RELEASE_MANAGERS = "release managers"
ADMINS = "admins"
ROLES = (VIEWERS, RELEASE_MANAGERS, ADMINS)

PERMISSION_NAMES = {
    VIEW: "Can view the fleet dashboard and the audit log",
    APPROVE: "Can approve stage gates",
    OPERATE: "Can stop, resume, start and roll back update runs",
    ADMINISTER: "Can administer Fleet UI",
}
ROLE_PERMISSIONS = {
    VIEWERS: (VIEW,),
    RELEASE_MANAGERS: (VIEW, APPROVE, OPERATE),
    ADMINS: (VIEW, APPROVE, OPERATE, ADMINISTER),
}


def requires(perm: str):
    """View decorator: anonymous people go to the login page; a signed-in
    person without `perm` gets 403 (a forged POST included)."""

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapped(request, *args, **kwargs):
            if not request.user.has_perm(perm):
                if request.method not in ("GET", "HEAD", "OPTIONS"):  # an attempted action: audited
                    access_denied_record(request, reason=f"you need the {perm} permission")
                raise PermissionDenied(f"you need the {perm} permission")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def roles_ensure() -> None:
    """Make sure the groups and permissions exist, as migration 0003 makes
    them. Needed where tables were flushed after migrating (transactional
    tests) and harmless elsewhere: nothing is created twice."""
    content_type = ContentType.objects.get_for_model(ClusterStagedUpdateRun)
    perms = {}
    for perm, name in PERMISSION_NAMES.items():
        codename = perm.split(".", 1)[1]
        perms[perm], _ = Permission.objects.get_or_create(content_type=content_type, codename=codename,
                                                          defaults={"name": name})
    for role, role_perms in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.add(*(perms[p] for p in role_perms))


def user_create(*, username: str, role: str, password: str | None = None):
    """Create (or reset) a user in exactly one role. Returns (user, password);
    a password is generated when none is given. Admins are also staff."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
    roles_ensure()
    password = password or secrets.token_urlsafe(12)
    user, _ = get_user_model().objects.get_or_create(username=username)
    user.set_password(password)
    user.is_staff = user.is_superuser = role == ADMINS
    user.save()
    user.groups.set([Group.objects.get(name=role)])
    return user, password
