"""The dashboard's three roles as groups, with Fleet UI's own permissions.

Kept self-contained (no import of rollouts.roles): a migration must keep
meaning what it meant when it was written.
"""

from django.db import migrations

PERMISSIONS = {
    "view_fleet": "Can view the fleet dashboard and the audit log",
    "approve_stage": "Can approve stage gates",
    "operate_run": "Can stop, resume, start and roll back update runs",
    "administer_fleet": "Can administer Fleet UI",
}
GROUPS = {
    "viewers": ("view_fleet",),
    "release managers": ("view_fleet", "approve_stage", "operate_run"),
    "admins": ("view_fleet", "approve_stage", "operate_run", "administer_fleet"),
}


def create_roles(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    # Permissions need a content type; the update run is the dashboard's subject.
    content_type, _ = ContentType.objects.get_or_create(app_label="rollouts", model="clusterstagedupdaterun")
    perms = {}
    for codename, name in PERMISSIONS.items():
        perms[codename], _ = Permission.objects.get_or_create(
            content_type=content_type, codename=codename, defaults={"name": name}
        )
    for group_name, codenames in GROUPS.items():
        group, _ = Group.objects.get_or_create(name=group_name)
        group.permissions.add(*(perms[c] for c in codenames))


def drop_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=GROUPS).delete()
    apps.get_model("auth", "Permission").objects.filter(
        content_type__app_label="rollouts", codename__in=PERMISSIONS
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("rollouts", "0003_run_wake_at"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, drop_roles)]
