"""Reads of a person's dashboard preferences (models.UserPreference)."""

from rollouts import models as m


def preference_theme(user) -> str:
    """The user's theme: light, dark, or auto (also without a stored preference)."""
    theme = m.UserPreference.objects.filter(user=user).values_list("theme", flat=True).first()
    return theme or m.UserPreference.Theme.AUTO

# Where a page finds the theme without a query: the session of a signed-in
# person (loaded at sign-in, rollouts.signals; updated by the toggle), and a
# cookie for the pages before sign-in (the login page).
THEME_SESSION_KEY = "fleet_theme"
THEME_COOKIE = "fleet_theme"
