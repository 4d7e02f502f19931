"""The time view's SVG, built in Python (a 1,000-cluster run draws a
thousand bars: a template loop would take a hundred milliseconds). Colours
come from classes in static/timeview.css, never from style attributes, so
the CSP needs no unsafe-inline; every text goes through format_html."""

from django import template
from django.utils.html import format_html, format_html_join

register = template.Library()

_SHAPE = '<rect x="{}" y="{}" width="{}" height="{}" class="{}"><title>{}</title></rect>\n'
_TICK = ('<line x1="{0}" x2="{0}" y1="{1}" y2="{2}" class="tick-line"/>'
         '<text x="{0}" y="{3}" class="tick-text" text-anchor="middle">{4}</text>\n')
_LABEL = '<text x="4" y="{}" class="stage-label">{}</text>\n'


@register.simple_tag
def time_view_svg(view, label: str) -> str:
    """`view`: a selectors.timeview.TimeView; `label`: the drawing's accessible name."""
    ticks = format_html_join("", _TICK, ((t.x, 18, view.height, 12, t.text) for t in view.ticks))
    labels = format_html_join("", _LABEL, ((y, name[:22]) for y, name in view.labels))
    shapes = format_html_join("", _SHAPE, ((s.x, s.y, s.width, s.height, s.css, s.label) for s in view.shapes))
    now = format_html('<line x1="{0}" x2="{0}" y1="14" y2="{1}" class="now-line" data-now/>'
                      '<text x="{0}" y="10" class="now-text" text-anchor="middle">now</text>',
                      view.now_x, view.height) if view.now_x is not None else ""
    return format_html(
        '<svg class="time-view" viewBox="0 0 {0} {1}" width="100%" role="img" aria-label="{2}" '
        'preserveAspectRatio="xMinYMin meet">\n{3}{4}{5}{6}</svg>',
        view.width, view.height, label, ticks, labels, shapes, now)
