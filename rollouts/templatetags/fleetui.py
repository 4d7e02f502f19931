"""Template helpers for the dashboard: URLs of cluster-scoped or namespaced
objects, and short time and duration texts. Everything returned is plain
text, autoescaped by the template."""

from datetime import datetime
from urllib.parse import quote

from django import template
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator
from django.utils.timezone import get_current_timezone_name, localtime

from rollouts import clock
from rollouts.selectors.common import Memo, duration_text
from rollouts.selectors.pipeline import stage_cells

register = template.Library()


@register.simple_tag
def fleet_url(view: str, name: str, namespace: str = "") -> str:
    """`{% fleet_url "run-detail" run.name run.namespace %}`.

    Some names come from free-text fields (a run's spec.placementName, an
    approval request's spec.parentStageRollout) and may hold a "/", which no
    object name can: the link is then to a page that says "not found",
    rather than a NoReverseMatch failing the whole page."""
    args = [namespace, name] if namespace else [name]
    route = f"rollouts:ns-{view}" if namespace else f"rollouts:{view}"
    try:
        return reverse(route, args=args)
    except NoReverseMatch:
        return reverse(route, args=[quote(str(arg), safe="") or "-" for arg in args])


@register.filter
def seconds(value) -> str:
    """A number of seconds as `1m5s`."""
    return duration_text(value)


@register.filter
def ago(moment: datetime | None) -> str:
    """How long ago, as `2m6s`."""
    if not moment:
        return ""
    return duration_text((clock.precise_now() - moment).total_seconds())


@register.filter
def css_token(value: str) -> str:
    """A state as a CSS class suffix: `approved (not accepted yet)` → `approved`."""
    return str(value).split(" ")[0].strip("()").lower()


_CLUSTER_ROW = ('<tr id="cluster-{}" class="row-{}"><td>{}</td><td>{}</td><td><span class="state state-{}">{}</span>{}</td>'
                "<td>{}</td><td>{}</td><td>{}</td></tr>\n")


def _time_cell(moment, text: str):
    return format_html('<time datetime="{}">{}</time>', moment.isoformat(), text) if moment else ""


@register.simple_tag
def cluster_rows(clusters) -> str:
    """The rows of a stage's cluster table (`ClusterView`s), built in Python:
    a 1,000-cluster run renders in milliseconds rather than a template loop's
    hundred. Every value goes through format_html, escaped as {{ }} would be."""
    return format_html_join("", _CLUSTER_ROW, (
        (c.name, "failing" if c.failure or c.state == "failed" else c.state, i, c.name, c.state, c.state,
         format_html(' <span class="message">{}</span>', c.message) if c.message else "",
         _time_cell(c.started, c.started_text), _time_cell(c.ended, c.ended_text), c.duration)
        for i, c in enumerate(clusters, 1)))


_CELL = '<span class="cell cell-{}" id="{}" role="img" tabindex="-1" aria-label="{}"></span>'
_FIRST_CELL = '<span class="cell cell-{}" id="{}" role="img" tabindex="0" aria-label="{}"></span>'


@register.simple_tag
def cluster_map(stage, key) -> str:
    """The map cells of a stage (a `StageView`), the stage being number `key`
    on its page (or "deletion"): built in Python like `cluster_rows`, one
    short element per cluster (state class, stable id, accessible name,
    which the stylesheet also shows as the cell's tooltip). The first cell
    is the map's one Tab stop; static/fleetui.js moves it with the arrow keys."""
    cells = [(c.state.value, c.id, c.label) for c in stage_cells(stage, key)]
    if not cells:
        return ""
    return format_html(_FIRST_CELL, *cells[0]) + format_html_join("", _CELL, cells[1:])


_EVENT_ROW = ('<tr><td><time datetime="{}">{}</time></td><td>{}</td><td>{}</td><td>{}{}{}{}</td><td>{}{}</td></tr>\n')
MESSAGE_SHOWN = 160  # characters of an event's message in a table


# Events never change once written: a row is built once per content (and time
# zone), and the run page's push, which shows the latest 20 each time, reuses it.
_EVENT_ROWS = Memo(4096)


@register.simple_tag
def event_rows(events) -> str:
    """The rows of an events table (audit `Event`s), built in Python like
    `cluster_rows`: the run page's live push renders its latest events each
    time. The same cells as `{{ }}` with the `date` and `truncatechars`
    filters gave, escaped the same way."""
    zone = get_current_timezone_name()
    return format_html_join("", "{}", ((_EVENT_ROWS.get(_event_key(e, zone), lambda e=e: format_html(_EVENT_ROW, *_event_cells(e))),)
                                       for e in events))


def _event_key(event, zone: str) -> tuple:
    details = event.details or {}
    return (zone, event.pk, event.time, event.actor, event.action, event.object_kind, event.object_namespace,
            event.object_name, details.get("stage"), details.get("cluster"), event.reason, event.message)


def _event_cells(event) -> tuple:
    moment, details, message = localtime(event.time), event.details or {}, event.message or ""
    if len(message) > MESSAGE_SHOWN:
        message = Truncator(message).chars(MESSAGE_SHOWN)
    return (moment.isoformat(), f"{moment:%Y-%m-%d %H:%M:%S}", event.actor, event.action, event.object_kind,
            format_html(" {}/", event.object_namespace) if event.object_namespace else " ", event.object_name,
            "".join(format_html(" · {}", details[key]) for key in ("stage", "cluster") if details.get(key)),
            format_html('<span class="reason">{}</span> ', event.reason) if event.reason else "", message)
