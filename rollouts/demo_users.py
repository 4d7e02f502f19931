"""Demo logins for `make run`: an admin and a release manager with freshly
generated passwords (printed once by the Makefile, never stored in clear)."""

from dataclasses import dataclass

from rollouts.roles import ADMINS, RELEASE_MANAGERS, user_create

DEMO_ADMIN = "admin"
DEMO_RELEASE_MANAGER = "release-manager"


@dataclass(frozen=True)
class DemoUser:
    username: str
    password: str
    role: str


def demo_users_create() -> list[DemoUser]:
    """Create or reset the two demo users; returns them with their passwords.
    Running it again gives both new passwords."""
    users = []
    for username, role in ((DEMO_ADMIN, ADMINS), (DEMO_RELEASE_MANAGER, RELEASE_MANAGERS)):
        _, password = user_create(username=username, role=role)
        users.append(DemoUser(username=username, password=password, role=role))
    return users
