"""A run page's live fragments: a push sends only the parts of the page that
changed since the last push to the same audience (issue 16).

The run page's timeline (templates/rollouts/run_detail.html#timeline) is made
of fragments, each rooted at an element with a stable id:

    run-facts run-strip run-sentence run-actions run-rest   the run as a whole
    map-legend failing-count                                the map's legend, the "only failing" count
    stage-<n>-head stage-<n>-before stage-<n>-after         a stage's head and its gates
    cell-<n>-<cluster>                                      a cluster's cell on the map
    table-<n>                                               a small stage's table
    stage-<n> stage-deletion                                a whole stage

A `PageState` holds a fingerprint of each. A stage's (its shape: state,
clusters, whether its table shows; its head, gates, table and cells) come
from the Timeline's data without rendering anything: a 1,000-cluster run has
1,000 cells, and rendering them all to find the one that changed would cost
what we save; a part is rendered only when its fingerprint changed. The few
run-level parts are rendered in one template pass (`#live-parts`) and
fingerprinted from their HTML, so they cannot drift from what the page shows.

`delta()` compares the state a group was last sent with the new one and
renders only what differs, as out-of-band elements after a marker naming the
version the delta applies to (`<!--live-delta base=V0 version=V1-->`):
static/live.js applies it only on a page showing V0 and otherwise fetches the
whole timeline. When the page's structure changes (its stages, the deletion
stage, whether it polls: the `shape`), there is no delta and the caller sends
the whole timeline, as the page's connect does.
"""

import json
import re
import struct
import zlib
from dataclasses import asdict, dataclass
from itertools import compress
from operator import ne

from django.template.loader import render_to_string
from django.utils.html import format_html

from rollouts.selectors.pipeline import cluster_cell, css_token

TEMPLATE = "rollouts/run_detail.html"
SEPARATOR = "<!--part-->"  # between the parts of #live-parts; escaped data cannot hold it
_ID = re.compile(r'\bid="([^"]+)"')
_CELL = ('<span class="cell cell-{}" id="{}" role="img" tabindex="-1" aria-label="{}" '
         'hx-swap-oob="true"></span>')


def fingerprint(text: str) -> str:
    """A short stable fingerprint (the same in every process, unlike hash())."""
    return f"{zlib.crc32(text.encode()):08x}"


@dataclass
class PageState:
    """What one audience's page of a run showed after a push: the run's
    resource version, the page's shape, a fingerprint per fragment id, and
    per stage number the packed fingerprints of its cells in map order."""

    version: int
    shape: str
    prints: dict[str, str]
    cells: dict[str, str]

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> "PageState":
        return cls(**json.loads(text))


@dataclass
class RunModel:
    """The audience-independent fingerprints of a run's page, from its
    timeline context (selectors.pages.run_timeline_context)."""

    context: dict
    version: int
    shape: str
    prints: dict[str, str]  # stage-<n>, table-<n>, stage-deletion
    cells: dict[str, str]


def run_model(context: dict) -> RunModel:
    """Fingerprint the shape, stages, tables and cells of a run's page from
    its data (no query, no template)."""
    tl = context["tl"]
    shape = fingerprint(repr((tl.run.name, bool(context.get("poll")), [s.name for s in tl.stages],
                              tl.deletion is not None)))
    prints, cells = {}, {}
    for n, stage in enumerate(tl.stages, 1):
        prints.update(_stage_prints(stage, n))
        cells[str(n)] = _cell_prints(stage)
    if tl.deletion is not None:
        prints["stage-deletion"] = fingerprint(repr((tl.deletion.state, [(c.name, c.state) for c in tl.deletion.clusters],
                                                     _cell_prints(tl.deletion))))
    return RunModel(context, tl.run.resource_version, shape, prints, cells)


def _stage_prints(stage, n: int) -> dict[str, str]:
    """A stage's shape (sent whole when it changes), head, gates and small table.
    Each covers every field its partial shows (the gates: all of TaskView's)."""
    prints = {
        f"stage-{n}": fingerprint(repr((css_token(stage.state), stage.collapsed, stage.table_deferred,
                                        [c.name for c in stage.clusters]))),
        f"stage-{n}-head": fingerprint(repr((stage.name, stage.state, stage.done, len(stage.clusters), stage.started,
                                             stage.ended, stage.duration))),
        f"stage-{n}-before": fingerprint(repr(stage.before)),
        f"stage-{n}-after": fingerprint(repr(stage.after)),
    }
    if not stage.table_deferred:
        prints[f"table-{n}"] = fingerprint(repr([
            (c.name, c.state, c.failure is not None, c.message, c.started, c.ended, c.duration)
            for c in stage.clusters]))
    return prints


def _cell_prints(stage) -> str:
    """The packed fingerprints of a stage's cells, in map order: each of
    what its cell shows, the ClusterView's own (computed once per view:
    unchanged clusters share their view from push to push)."""
    return struct.pack(f">{len(stage.clusters)}I", *[c.fingerprint for c in stage.clusters]).hex()


def render_parts(model: RunModel, perms: dict) -> dict[str, str]:
    """{id: out-of-band HTML} of the run-level parts (`#live-parts`), for one
    audience's permissions (one template render)."""
    html = render_to_string(f"{TEMPLATE}#live-parts", {**model.context, "perms": perms, "part_oob": True})
    parts = {}
    for piece in html.split(SEPARATOR):
        found = _ID.search(piece)
        if found:
            parts[found.group(1)] = piece.strip()
    return parts


def page_state(model: RunModel, parts: dict[str, str]) -> PageState:
    """The state a page is in once it shows `model` with these parts."""
    prints = {**model.prints, **{id_: fingerprint(html) for id_, html in parts.items()}}
    return PageState(model.version, model.shape, prints, model.cells)


def delta(previous: PageState | None, model: RunModel, parts: dict[str, str], perms: dict) -> str | None:
    """The out-of-band HTML that turns a page showing `previous` into one
    showing `model`, after its marker; None when the page's shape changed
    (or nothing was sent before): send the whole timeline then.

    1. A stage whose shape changed is sent whole.
    2. Otherwise its changed cells, each alone, and its head, gates and small
       table if they changed.
    3. The deletion stage if it changed, and the run-level parts whose HTML changed."""
    if previous is None or previous.shape != model.shape:
        return None
    out = []
    stages = model.context["tl"].stages
    for n, stage in enumerate(stages, 1):
        if _changed(previous, model, f"stage-{n}"):
            out.append(_render("stage-row", model, perms, stage, n))
            continue
        out += _changed_cells(previous.cells.get(str(n), ""), model.cells[str(n)], stage, n)
        out += [_render(name, model, perms, stage, n) for name, id_ in _STAGE_PARTS
                if _changed(previous, model, id_.format(n=n))]
    if _changed(previous, model, "stage-deletion"):
        out.append(_render("stage-deletion", model, perms))
    out += [html for id_, html in parts.items() if previous.prints.get(id_) != fingerprint(html)]
    return f"<!--live-delta base={previous.version} version={model.version}-->" + "".join(out)


# A stage's parts sent alone while its shape stays: (partial, fragment id).
_STAGE_PARTS = (("stage-head", "stage-{n}-head"), ("stage-before", "stage-{n}-before"),
                ("stage-after", "stage-{n}-after"), ("stage-table", "table-{n}"))


def _changed(previous: PageState, model: RunModel, id_: str) -> bool:
    return id_ in model.prints and previous.prints.get(id_) != model.prints[id_]


def _render(partial: str, model: RunModel, perms: dict, stage=None, n: int | None = None) -> str:
    """One partial of the run page, out of band, for one audience."""
    return render_to_string(f"{TEMPLATE}#{partial}", {**model.context, "perms": perms, "stage": stage, "n": n,
                                                      "part_oob": True})


def _changed_cells(before: str, after: str, stage, n: int) -> list[str]:
    """The cells whose fingerprint differs (8 hex digits a cell, in map order;
    the stage's shape, hence its clusters and their order, is unchanged)."""
    if before == after:
        return []
    count = len(after) // 8
    olds = struct.unpack(f">{count}I", bytes.fromhex(before)) if len(before) == len(after) else [None] * count
    news = struct.unpack(f">{count}I", bytes.fromhex(after))
    cells = [cluster_cell(stage.clusters[i], n) for i in compress(range(count), map(ne, olds, news))]
    return [format_html(_CELL, cell.state.value, cell.id, cell.label) for cell in cells]
