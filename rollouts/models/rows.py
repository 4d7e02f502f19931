"""The statements we write ourselves for many rows (audit Events, bindings
bound in bulk, a member's objects: insert_many, update_many) and one read
compiled once (CompiledRead). Row values go through each field's
preparation, as the ORM does, except what that preparation returns
unchanged, passed as it is: preparing every value took a fifth of the
engine's write time for thousands of rows a tick."""

from django.db import DEFAULT_DB_ALIAS, connections, models
from psycopg.adapt import Transformer

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


class CompiledRead:
    """A read of one model row whose SQL Django compiles once per database
    instead of on every call: the engine reads the locked run and its
    placement on every load of a run's world (1,600 reads for 100 rollouts),
    and compiling each query cost more (0.7 ms) than running it. Values go
    through the fields' converters and the row becomes a model instance as
    the ORM builds them (fields the queryset defers stay deferred).

    `build(*params)` returns the queryset for those parameters (not
    sliced; unordered, it is ordered by pk as `.first()` does). Its SQL must
    take exactly `params`, in any order (Django orders a filter's conditions
    its own way): one whose parameters differ (a lookup that rewrites its
    value) is run through the ORM every time. It is compiled on the first
    call whose parameters are all different, so that each finds its place."""

    def __init__(self, build):
        self._build = build
        # (alias, vendor) -> (sql, parameter order, model, attnames, converters), or None: use the ORM
        self._compiled: dict[tuple[str, str], tuple | None] = {}

    def first(self, *params, using: str = DEFAULT_DB_ALIAS):
        """The first row for `params` as a model instance, or None."""
        connection = connections[using]
        key = (using, connection.vendor)
        if key not in self._compiled and len(set(_typed(params))) == len(params):
            self._compiled[key] = self._compile(params, using)
        compiled = self._compiled.get(key)
        if compiled is None:
            return self._build(*params).using(using).first()
        sql, order, model, attnames, converters = compiled
        with connection.cursor() as cursor:
            cursor.execute(sql, [params[i] for i in order])
            row = cursor.fetchone()
        if row is None:
            return None
        row = list(row)
        for position, (functions, expression) in converters:
            for convert in functions:
                row[position] = convert(row[position], expression, connection)
        return model.from_db(using, attnames, row)

    def _compile(self, params: tuple, using: str) -> tuple | None:
        """(SQL, the index in `params` of each of its parameters, model,
        attnames, converters) of the queryset for `params` (all different),
        or None when its SQL takes other parameters than `params`."""
        queryset = self._build(*params).using(using)
        if not queryset.ordered:
            queryset = queryset.order_by("pk")
        query = queryset.query.chain()
        query.set_limits(high=1)
        compiler = query.get_compiler(using)
        sql, sql_params = compiler.as_sql()
        typed = _typed(params)
        if (sorted(map(repr, _typed(sql_params))) != sorted(map(repr, typed)) or compiler.klass_info is None
                or compiler.annotation_col_map):
            return None
        order = [typed.index(p) for p in _typed(sql_params)]
        fields = compiler.klass_info["select_fields"]
        selected = compiler.select[fields[0]:fields[-1] + 1]
        converters = compiler.get_converters([column for column, _, _ in selected])
        return (sql, order, queryset.model, [column.target.attname for column, _, _ in selected],
                sorted(converters.items()))


def _typed(params) -> list[tuple]:
    """Parameters with their types: 1 and True, or 0 and "", are not the same one."""
    return [(type(p), p) for p in params]


# Values a PostgreSQL statement (literals: no parameter limit applies,
# but a statement's text is held whole in memory on both sides).
_PG_VALUES = 65_535


def values_sql(cursor, rows: list[list], casts: list[str] | None = None) -> str:
    """`rows` as the rows of a PostgreSQL VALUES list, each value a literal
    quoted by the connection's own adapters (what psycopg's client-side
    binding, Django's default, sends for a %s), `::cast` after each column's
    where `casts` says. Written out here rather than as thousands of %s:
    psycopg splits a statement at its placeholders in Python, and does not
    cache that for a long one (4.4 µs a placeholder: 31,000 audit events of
    11 values took 1.4 s of a worker's 30 s, three times the quoting).

    A value object the rows share (db_values prepares a manifest every
    member holds, or a pass's time, once) is quoted once: by its id, which
    no other object takes while `rows` holds it."""
    literal = Transformer.from_context(cursor.cursor).as_literal
    quoted: dict[int, bytes] = {}

    def quote(value) -> bytes:
        if value is None:
            return b"NULL"
        if type(value) in _QUOTED_EACH_TIME:
            return literal(value)
        key = id(value)
        if key not in quoted:
            quoted[key] = literal(value)
        return quoted[key]

    suffixes = [f"::{cast}".encode() for cast in casts] if casts else None
    out = []
    for row in rows:
        values = [quote(v) for v in row]
        if suffixes:
            values = [value + suffix for value, suffix in zip(values, suffixes, strict=True)]
        out.append(b"(" + b", ".join(values) + b")")
    return b", ".join(out).decode()


_QUOTED_EACH_TIME = frozenset({str, int, bool})  # cheaper to quote than to look up


def insert_many(connection, table: str, columns: list[str], rows: list[list], suffix: str = "") -> None:
    """INSERT `rows` into `table` (quoted names): on PostgreSQL as one
    statement of many VALUES rows (values_sql; in chunks), elsewhere one
    statement run for every row (executemany). `suffix`: what follows the
    VALUES (an ON CONFLICT clause: then no two rows may share the
    conflict's key, as one statement may not touch a row twice).

    executemany on PostgreSQL is a statement a row: each parsed, planned and
    sent on its own (31,000 audit events for 100 rollouts, each cheaper to
    run than to send)."""
    if not rows:
        return
    head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            cursor.executemany(head + f"({', '.join(['%s'] * len(columns))})" + suffix, rows)
            return
        for chunk in _chunks(rows, len(columns)):
            cursor.execute(head + values_sql(cursor, chunk) + suffix)


def update_many(connection, table: str, key: str, columns: list[str], types: list[str], rows: list[list],
                check: str | None = None) -> int:
    """UPDATE `columns` of `table` for each row [*values, key value
    (, check value)]: where `key` (its primary key) equals the key value and,
    with `check`, column `check` equals the check value (compare-and-set).
    Returns the rows written. On PostgreSQL one statement joins a VALUES list
    (values_sql; `types`: each column's cast, the key's and check's bigint),
    else a statement run for every row. Keys must not repeat."""
    if not rows:
        return 0
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql" or len(rows) == 1:
            where = f"{key} = %s" + (f" AND {check} = %s" if check else "")
            sql = f"UPDATE {table} SET {', '.join(f'{c} = %s' for c in columns)} WHERE {where}"
            if len(rows) == 1:
                cursor.execute(sql, rows[0])
            else:
                cursor.executemany(sql, rows)
            return cursor.rowcount
        written = 0
        for chunk in _chunks(rows, len(columns) + 2):
            cursor.execute(_update_from_values(cursor, table, key, columns, types, chunk, check))
            written += cursor.rowcount
        return written


def update_many_drawing(connection, table: str, key: str, columns: list[str], types: list[str], rows: list[list],
                        check: str, drawn: str, draw: str) -> dict:
    """update_many on PostgreSQL with compare-and-set on `check`, also
    setting column `drawn` to the SQL expression `draw` (the hub's next
    resourceVersion) in the statement itself: {key value: drawn value} of
    the rows written. A statement less a write than drawing the values
    first (2,500 of 50,000 statements for 100 rollouts)."""
    out = {}
    with connection.cursor() as cursor:
        for chunk in _chunks(rows, len(columns) + 2):
            cursor.execute(_update_from_values(cursor, table, key, columns, types, chunk, check,
                                               extra=f"{drawn} = {draw}") + f" RETURNING {table}.{key}, {table}.{drawn}")
            out.update(cursor.fetchall())
    return out


def _update_from_values(cursor, table: str, key: str, columns: list[str], types: list[str], rows: list[list],
                        check: str | None, extra: str = "") -> str:
    names = [f"c{i}" for i in range(len(columns))] + ["k"] + (["v"] if check else [])
    casts = [*types, "bigint"] + (["bigint"] if check else [])
    where = f"{table}.{key} = u.k" + (f" AND {table}.{check} = u.v" if check else "")
    sets = ", ".join([f"{column} = u.c{i}" for i, column in enumerate(columns)] + ([extra] if extra else []))
    return (f"UPDATE {table} SET {sets} "  # noqa: S608
            f"FROM (VALUES {values_sql(cursor, rows, casts)}) AS u({', '.join(names)}) WHERE {where}")


def _chunks(rows: list, width: int):
    size = max(1, _PG_VALUES // max(1, width))
    for start in range(0, len(rows), size):
        yield rows[start:start + size]
