"""The tamper-evident audit chain over Event rows (docs/audit.md).

Writers append Events with seq/prev_hash/hash NULL, inside their own
transactions and without any lock of ours: a chain lock taken there would
serialize the engine and could deadlock with its run row locks. After commit
`audit_seal` gives the new rows their place in the chain, in id order:

    seq       = previous seq + 1
    prev_hash = the previous row's hash (GENESIS for seq 1)
    hash      = sha256(prev_hash + canonical JSON of the row)

`audit_verify` walks the chain by seq and reports the first broken link.
"""

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import UTC

from django.db import DEFAULT_DB_ALIAS, connections, transaction

from rollouts import changes
from rollouts import models as m

log = logging.getLogger(__name__)

GENESIS = "0" * 64
# The chain lock: one PostgreSQL advisory lock key ("FleetAud").
CHAIN_LOCK = 0x466C656574417564
# Rows sealed per statement: 4 parameters a row stays under SQLite's 999.
SEAL_BATCH = 200
VERIFY_CHUNK = 2000

AUDITED_FIELDS = ("id", "time", "actor", "action", "object_kind", "object_namespace", "object_name", "run",
                  "reason", "message", "details")


def canonical(row: dict, seq: int) -> str:
    """The row's audited content as JSON that reads the same from SQLite and
    PostgreSQL: sorted keys, no spaces, the time in UTC to the microsecond
    (both store microseconds), details as their JSON value (jsonb reorders
    keys; sort_keys undoes that)."""
    content = {field: row[field] for field in AUDITED_FIELDS}
    content["time"] = row["time"].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    content["seq"] = seq
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def link_hash(prev_hash: str, row: dict, seq: int) -> str:
    """The hash of one link: sha256 over the previous hash and the row."""
    return hashlib.sha256((prev_hash + canonical(row, seq)).encode("utf-8")).hexdigest()


def audit_seal(*, using: str = DEFAULT_DB_ALIAS) -> int:
    """Chain every unsealed Event, in id order. Returns how many were sealed.

    Each batch is its own short transaction whose only lock is the chain lock
    (an advisory lock on PostgreSQL; SQLite's write transaction is already
    exclusive). Queries per batch: the lock, the unsealed rows, the head, one
    UPDATE; a call with nothing to seal reads once and stops."""
    total = 0
    while True:
        sealed = _seal_batch(using)
        total += sealed
        if sealed < SEAL_BATCH:
            return total


def on_changes(events: list) -> None:
    """The changes subscriber: seal what committed transactions appended
    (models.hub.schedule_seal publishes AuditAppended). A seal that fails
    leaves its rows for the next seal or `fleet audit verify`."""
    for using in dict.fromkeys(e.using for e in events if isinstance(e, changes.AuditAppended)):
        audit_seal(using=using)


def _seal_batch(using: str) -> int:
    with transaction.atomic(using=using):
        connection = connections[using]
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                # No wait for the WAL flush: a seal lost in a crash only leaves
                # its rows unsealed, and the next seal redoes it.
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CHAIN_LOCK])
        rows = list(m.Event.objects.using(using).filter(seq__isnull=True).order_by("id")
                    .values(*AUDITED_FIELDS)[:SEAL_BATCH])
        if not rows:
            return 0
        head = (m.Event.objects.using(using).filter(seq__isnull=False).order_by("-seq")
                .values_list("seq", "hash").first()) or (0, GENESIS)
        _write_links(connection, _links(rows, *head))
    return len(rows)


def _links(rows: list[dict], seq: int, prev_hash: str) -> list[tuple]:
    links = []
    for row in rows:
        seq += 1
        digest = link_hash(prev_hash, row, seq)
        links.append((row["id"], seq, prev_hash, digest))
        prev_hash = digest
    return links


def _write_links(connection, links: list[tuple]) -> None:
    """One UPDATE for the batch. Raw SQL on purpose: the ORM refuses Event
    updates (EventQuerySet), and this is the one update the log allows (the
    PostgreSQL trigger allows it only from NULL). VALUES columns are named
    column1.. on both SQLite (3.33+) and PostgreSQL."""
    table = connection.ops.quote_name(m.Event._meta.db_table)
    values = ", ".join(["(%s, %s, %s, %s)"] * len(links))
    if connection.vendor == "postgresql":  # typed, so PostgreSQL need not guess
        values = ", ".join(["(%s::bigint, %s::bigint, %s::varchar, %s::varchar)"] * len(links))
    sql = (f"UPDATE {table} SET seq = v.column2, prev_hash = v.column3, hash = v.column4 "
           f"FROM (VALUES {values}) AS v WHERE {table}.id = v.column1 AND {table}.seq IS NULL")
    with connection.cursor() as cursor:
        cursor.execute(sql, [value for link in links for value in link])


@dataclass(frozen=True)
class Verdict:
    """What `audit_verify` found: `broken` is None when the chain is intact;
    else the first broken link (`seq` expected there, the row `id` found,
    and what is wrong with it)."""

    count: int
    head: str
    broken: str | None = None
    seq: int | None = None
    id: int | None = None

    @property
    def intact(self) -> bool:
        return self.broken is None


def audit_verify(*, using: str = DEFAULT_DB_ALIAS, chunk: int = VERIFY_CHUNK) -> Verdict:
    """Seal what is unsealed, then walk the chain by seq in chunks of `chunk`
    rows (memory stays bounded) and stop at the first broken link:

    1. a gap: the row with the next seq is missing (deleted, or its seq moved);
    2. a wrong link: the row's prev_hash is not the previous row's hash;
    3. changed content: the row's hash is not the hash of what it says now.
    """
    audit_seal(using=using)
    expected, prev_hash, count = 1, GENESIS, 0
    rows = _chain(using, chunk)
    for row in rows:
        problem = _check(row, expected, prev_hash)
        if problem:
            return Verdict(count=count, head=prev_hash, broken=problem, seq=expected, id=row["id"])
        expected, prev_hash, count = expected + 1, row["hash"], count + 1
    return Verdict(count=count, head=prev_hash)


def _chain(using: str, chunk: int):
    """Sealed rows in seq order, `chunk` at a time (keyset paging by seq)."""
    fields = (*AUDITED_FIELDS, "seq", "prev_hash", "hash")
    last = 0
    while True:
        rows = list(m.Event.objects.using(using).filter(seq__gt=last).order_by("seq").values(*fields)[:chunk])
        yield from rows
        if len(rows) < chunk:
            return
        last = rows[-1]["seq"]


def _check(row: dict, expected: int, prev_hash: str) -> str | None:
    if row["seq"] != expected:
        return f"row missing: seq {expected} is gone (the next row, id {row['id']}, has seq {row['seq']})"
    if row["prev_hash"] != prev_hash:
        return (f"prev link wrong: row id {row['id']} links to {row['prev_hash']}, "
                f"but the row before it hashes to {prev_hash} (one of them was rewritten)")
    if link_hash(row["prev_hash"], row, row["seq"]) != row["hash"]:
        return f"content changed: row id {row['id']} no longer matches its hash {row['hash']}"
    return None
