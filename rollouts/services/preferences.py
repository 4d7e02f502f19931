"""Writes of a person's dashboard preferences (models.UserPreference).

A display preference changes nothing in the fleet: no change event, no
audit row."""

from rollouts import models as m

THEMES = tuple(m.UserPreference.Theme.values)


def preference_theme_set(*, user, theme: str) -> str:
    """Remember `theme` (auto, light or dark) for `user` and return it.
    Raises ValueError naming the field for any other value."""
    if theme not in THEMES:
        raise ValueError(f"theme must be one of {', '.join(THEMES)}, not {theme[:20]!r}")
    m.UserPreference.objects.update_or_create(user=user, defaults={"theme": theme})
    return theme
