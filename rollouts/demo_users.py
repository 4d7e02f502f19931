"""Demo logins for `make run`: an admin, a release manager and a viewer with
freshly generated passwords (printed once by the Makefile, never stored in clear)."""

from dataclasses import dataclass

from rollouts.roles import ADMINS, RELEASE_MANAGERS, VIEWERS, user_create

DEMO_ADMIN = "admin"
DEMO_RELEASE_MANAGER = "release-manager"
DEMO_VIEWER = "viewer"
DEMO_USERS = ((DEMO_ADMIN, ADMINS), (DEMO_RELEASE_MANAGER, RELEASE_MANAGERS), (DEMO_VIEWER, VIEWERS))


@dataclass(frozen=True)
class DemoUser:
    username: str
    password: str
    role: str


def demo_users_create() -> list[DemoUser]:
    """Create or reset the three demo users; returns them with their passwords.
    Running it again gives each a new password."""
    users = []
    for username, role in DEMO_USERS:
        _, password = user_create(username=username, role=role)
        users.append(DemoUser(username=username, password=password, role=role))
    return users


def demo_logins_text(users: list[DemoUser]) -> str:
    """The sign-in lines `make run` prints, one user a line, aligned."""
    width = max(len(u.username) for u in users)
    return "\n".join(f"  {u.username.ljust(width)}  {u.password}   ({u.role})" for u in users)
