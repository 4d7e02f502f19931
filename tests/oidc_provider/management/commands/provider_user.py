"""`provider_user NAME --password PW --groups G1 G2`: create or update a
person at the test provider, with exactly these groups."""

from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--password")
        parser.add_argument("--groups", nargs="*", default=[])

    def handle(self, *args, username, password, groups, **options):
        user, _ = User.objects.get_or_create(username=username, defaults={"email": f"{username}@example.test"})
        if password:
            user.set_password(password)
            user.save()
        user.groups.set([Group.objects.get_or_create(name=name)[0] for name in groups])
