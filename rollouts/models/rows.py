"""Row values for the statements we write ourselves (executemany INSERTs and
UPDATEs: audit Events, bindings bound in bulk, a member's objects): each
value through its field's preparation, as the ORM does, except what that
preparation returns unchanged, passed as it is. Preparing every value took
a fifth of the engine's write time for thousands of rows a tick."""

from django.db import models

_AS_IS = {models.CharField: str, models.TextField: str, models.BigIntegerField: int, models.IntegerField: int,
          models.PositiveIntegerField: int, models.BooleanField: bool}


def _kind(field) -> type | None:
    """The one Python type whose values this field's preparation returns
    unchanged (a str for a text column, an int for an integer one), or None."""
    for field_type, value_type in _AS_IS.items():
        if type(field) is field_type:
            return value_type
    return None


def db_values(objs, fields: list, connection, extra=None) -> list[list]:
    """[[each field's value of obj, ready for the database] + extra(i, obj)] for every obj;
    None goes as it is for every field but JSON ones (where it is the JSON null).
    A value object the rows share (the time of a pass, a snapshot's manifest
    every member holds) is prepared once: kept by its id, with the value
    itself, so no other object takes that id meanwhile."""
    kinds = [_kind(f) for f in fields]
    json = [isinstance(f, models.JSONField) for f in fields]
    prepared: dict[tuple[int, int], tuple] = {}  # (field, id(value)) -> (value, prepared)
    rows = []
    for i, obj in enumerate(objs):
        row = []
        for j, (field, kind, is_json) in enumerate(zip(fields, kinds, json, strict=True)):
            value = getattr(obj, field.attname)
            if (kind is not None and type(value) is kind) or (value is None and not is_json):
                row.append(value)
                continue
            key = (j, id(value))
            if key not in prepared:
                prepared[key] = (value, field.get_db_prep_save(value, connection))
            row.append(prepared[key][1])
        rows.append(row + extra(i, obj) if extra else row)
    return rows
