"""The audit log: filters, keyset paging, CSV and JSON export."""

import csv
import json
from urllib.parse import urlencode

from django.http import StreamingHttpResponse

from rollouts import models as m
from rollouts import roles, selectors
from rollouts.services.events import visible_text

from .helpers import page

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@roles.requires(roles.VIEW)
def audit_log(request):
    """Queries: the hub's CRD kinds (for the kind filter) and one page of rows."""
    flt = selectors.AuditFilter.from_params(request.GET)
    kinds = selectors.event_kinds()
    result = selectors.audit_page(flt, kinds=kinds, before=request.GET.get("before"), after=request.GET.get("after"))
    context = {"flt": flt, "result": result, "kinds": kinds, "actions": m.Event.Action.choices,
               "query": urlencode(flt.params())}
    return page(request, "rollouts/audit_log.html", context, partial="results")


class _Echo:
    """A file-like object csv.writer writes into, handing each line back."""

    def write(self, value):
        return value


def _csv_cell(value) -> str:
    """Text with control characters shown as escapes (a terminal showing the
    file runs no ANSI sequence), and never a formula a spreadsheet would run."""
    text = json.dumps(value, sort_keys=True) if isinstance(value, dict) else visible_text(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _csv_lines(rows):
    writer = csv.writer(_Echo())
    yield writer.writerow(selectors.EXPORT_COLUMNS)
    for row in rows:
        yield writer.writerow([_csv_cell(row[c]) for c in selectors.EXPORT_COLUMNS])


def _json_lines(rows):
    yield "["
    for i, row in enumerate(rows):
        # ensure_ascii: control, bidi and other invisible characters leave as \uXXXX escapes.
        yield ("," if i else "") + "\n" + json.dumps(row, sort_keys=True)
    yield "\n]\n"


@roles.requires(roles.VIEW)
def audit_export(request, fmt: str):
    """Every row the filters select (not just one page), streamed oldest first."""
    flt = selectors.AuditFilter.from_params(request.GET)
    rows = selectors.audit_export_rows(flt, kinds=selectors.event_kinds())
    lines, content_type = (_csv_lines(rows), "text/csv") if fmt == "csv" else (_json_lines(rows), "application/json")
    response = StreamingHttpResponse(lines, content_type=f"{content_type}; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="fleet-audit.{fmt}"'
    return response
