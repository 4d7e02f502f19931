"""What every dashboard view shares: rendering a page or one of its named
partials, and telling the person how an action went."""

from django.contrib import messages
from django.shortcuts import redirect, render

from rollouts import broadcast
from rollouts.selectors.pages import poll_seconds

# A notice's level is its colour (static/fleetui.css): success green, error and
# rejected red, warning amber (something still in progress), info blue.
_LEVELS = {"error": messages.ERROR, "rejected": messages.ERROR, "success": messages.SUCCESS,
           "warning": messages.WARNING, "info": messages.INFO}


def live_context(socket_path: str) -> dict:
    """How the page stays current: `socket` is its WebSocket path, or empty
    when pushes cannot reach this process (the in-memory channel layer with
    the engine in another process: `fleet engine` without REDIS_URL), and
    the page says it refreshes every `poll` seconds instead."""
    return {"socket": socket_path if broadcast.pushes_reach_browsers() else "", "poll": poll_seconds()}


def page(request, template: str, context: dict, *, partial: str | None = None, status: int = 200):
    """The whole page, or for an htmx request the named partial of the same
    template (so the page and its refresh can never drift apart)."""
    if partial and getattr(request, "htmx", False) and not request.htmx.boosted:
        template = f"{template}#{partial}"
    return render(request, template, context, status=status)


def notify_or_redirect(request, level: str, text: str, url: str, render_partial):
    """After an action: for htmx, re-render the affected partial with the
    notice in it; otherwise flash the notice and redirect (POST/redirect/GET)."""
    if getattr(request, "htmx", False):
        return render_partial({"notice": {"level": level, "text": text}})
    messages.add_message(request, _LEVELS.get(level, messages.INFO), text)
    return redirect(url)
