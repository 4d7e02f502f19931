"""The tamper-evident audit chain over Event rows (docs/audit.md).

Writers append Events with seq/prev_hash/hash NULL, inside their own
transactions and without any lock of ours: a chain lock taken there would
serialize the engine and could deadlock with its run row locks. After commit
`audit_seal` gives the new rows their place in the chain, in id order:

    seq       = previous seq + 1
    prev_hash = the previous row's hash (GENESIS for seq 1)
    hash      = sha256(prev_hash + canonical JSON of the row), or with
                FLEET_AUDIT_HMAC_KEY set, HMAC-SHA256 with that key, from
                seq FLEET_AUDIT_HMAC_FROM_SEQ on

Only rows inserted within FLEET_AUDIT_SEAL_WITHIN_SECONDS are sealed this
way: a row that waited longer (written by SQL outside the application, or
whose seal failed) is left for `audit_verify` to report and a person to seal
on purpose (`audit_seal(stale=True)`, `fleet audit seal --stale`).

`seals_deferred` lets a loop that commits many times (an engine tick, a
Celery advance) seal once at its end instead of after every commit.

`audit_verify` walks the chain by seq and reports the first broken link, the
rows left unsealed too long, and time going backwards.
"""

import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, timedelta

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import DateTimeField, ExpressionWrapper, Value
from django.db.models.functions import Now

from rollouts import changes
from rollouts import models as m
from rollouts.models.rows import values_sql

log = logging.getLogger(__name__)

GENESIS = "0" * 64
# The chain lock: one PostgreSQL advisory lock key ("FleetAud").
CHAIN_LOCK = 0x466C656574417564
# Rows sealed per statement: 4 parameters a row stays under SQLite's 999.
SEAL_BATCH = 200
VERIFY_CHUNK = 2000
REPORT_AT_MOST = 10  # stale rows and backward times listed by verify

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


def chain_key(seq: int) -> bytes | None:
    """The HMAC key for the link at `seq`: FLEET_AUDIT_HMAC_KEY from
    FLEET_AUDIT_HMAC_FROM_SEQ on, None (plain sha256) before it or unset.
    Both live outside the database: someone who can only write the database
    cannot compute a keyed link, nor move the switch-over point."""
    key = settings.FLEET_AUDIT_HMAC_KEY
    if not key or seq < settings.FLEET_AUDIT_HMAC_FROM_SEQ:
        return None
    return key.encode("utf-8")


def link_hash(prev_hash: str, row: dict, seq: int) -> str:
    """The hash of one link over the previous hash and the row: sha256, or
    HMAC-SHA256 where chain_key(seq) gives a key."""
    message = (prev_hash + canonical(row, seq)).encode("utf-8")
    key = chain_key(seq)
    if key is None:
        return hashlib.sha256(message).hexdigest()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _stale_before():
    """Rows inserted before this moment waited too long to be sealed
    automatically. Computed by the database's clock, as `recorded` is: a
    server clock that differs from the database's changes nothing."""
    window = timedelta(seconds=settings.FLEET_AUDIT_SEAL_WITHIN_SECONDS)
    return ExpressionWrapper(Now() - Value(window), output_field=DateTimeField())


def audit_seal(*, using: str = DEFAULT_DB_ALIAS, stale: bool = False) -> int:
    """Chain every unsealed Event inserted within FLEET_AUDIT_SEAL_WITHIN_SECONDS
    (every one with `stale`: a person's decision after looking at them), in
    id order. Returns how many were sealed.

    Each batch is its own short transaction whose only lock is the chain lock
    (an advisory lock on PostgreSQL; SQLite's write transaction is already
    exclusive). Queries per batch: the lock, the unsealed rows, the head, one
    UPDATE; a call with nothing to seal reads once and stops."""
    total = 0
    while True:
        sealed = _seal_batch(using, None if stale else _stale_before())
        total += sealed
        if sealed < SEAL_BATCH:
            return total


def on_changes(events: list) -> None:
    """The changes subscriber: seal what committed transactions appended
    (models.hub.schedule_seal publishes AuditAppended), or leave it to the
    end of the `seals_deferred` block this thread is in. A seal that fails
    leaves its rows for the next seal or `fleet audit verify`."""
    for using in dict.fromkeys(e.using for e in events if isinstance(e, changes.AuditAppended)):
        if not _deferred(using):
            audit_seal(using=using)


_deferring = threading.local()  # .waiting: {database alias: monotonic time its first unsealed commit was deferred}


@contextmanager
def seals_deferred() -> Iterator[None]:
    """Seal once, on leaving this block, what the commits inside it appended,
    instead of once after each commit (an engine tick commits a few hundred
    times: those seals were 15 % of its time, and each is a write transaction
    of its own). Every row committed inside is sealed before the block ends,
    raising or not; sooner once rows have waited a quarter of
    FLEET_AUDIT_SEAL_WITHIN_SECONDS, so a long tick never leaves them to go
    stale. This thread's commits only (the engine's health thread seals its
    own); in a nested block, the outermost seals."""
    if getattr(_deferring, "waiting", None) is not None:
        yield
        return
    _deferring.waiting = {}
    try:
        yield
    finally:
        waiting, _deferring.waiting = _deferring.waiting, None
        for using in waiting:
            try:
                audit_seal(using=using)
            except Exception as exc:  # as on_changes: the block's writes committed, the next seal redoes it
                log.warning("audit seal after a deferred block failed on %s: %s: %s", using, type(exc).__name__, exc)


def _deferred(using: str) -> bool:
    """Whether this commit's seal is left to the enclosing `seals_deferred`
    block: False outside one, or when its rows have waited long enough."""
    waiting = getattr(_deferring, "waiting", None)
    if waiting is None:
        return False
    since = waiting.setdefault(using, time.monotonic())
    if time.monotonic() - since < settings.FLEET_AUDIT_SEAL_WITHIN_SECONDS / 4:
        return True
    del waiting[using]
    return False


def _seal_batch(using: str, since) -> int:
    with transaction.atomic(using=using):
        connection = connections[using]
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                # No wait for the WAL flush (SET LOCAL, in the lock's statement):
                # a seal lost in a crash only leaves its rows unsealed, and the
                # next seal redoes it.
                cursor.execute("SELECT set_config('synchronous_commit', 'off', true), pg_advisory_xact_lock(%s)",
                               [CHAIN_LOCK])
        unsealed = m.Event.objects.using(using).filter(seq__isnull=True)
        if since is not None:
            unsealed = unsealed.filter(recorded__gte=since)
        rows = list(unsealed.order_by("id").values(*AUDITED_FIELDS)[:SEAL_BATCH])
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
    with connection.cursor() as cursor:
        update = (f"UPDATE {table} SET seq = v.column2, prev_hash = v.column3, hash = v.column4 "
                  f"FROM (VALUES {{}}) AS v WHERE {table}.id = v.column1 AND {table}.seq IS NULL")
        if connection.vendor == "postgresql":  # typed, so PostgreSQL need not guess
            cursor.execute(update.format(values_sql(cursor, links, ["bigint", "bigint", "varchar", "varchar"])))
        else:
            cursor.execute(update.format(", ".join(["(%s, %s, %s, %s)"] * len(links))),
                           [value for link in links for value in link])


@dataclass(frozen=True)
class Verdict:
    """What `audit_verify` found. `broken` is None when the chain is intact;
    else the first broken link (`seq` expected there, the row `id` found,
    and what is wrong with it). `stale`: ids of rows left unsealed longer
    than FLEET_AUDIT_SEAL_WITHIN_SECONDS (at most REPORT_AT_MOST; `stale_count`
    of them in all), not sealed by verify. `backwards`: rows whose time is
    earlier than an earlier link's by more than FLEET_AUDIT_CLOCK_SKEW_SECONDS
    (at most REPORT_AT_MOST)."""

    count: int
    head: str
    broken: str | None = None
    seq: int | None = None
    id: int | None = None
    stale: list[int] = field(default_factory=list)
    stale_count: int = 0
    backwards: list[str] = field(default_factory=list)

    @property
    def chain_intact(self) -> bool:
        return self.broken is None

    @property
    def intact(self) -> bool:
        """The chain is whole, nothing waits unsealed, and time never went back."""
        return self.broken is None and not self.stale_count and not self.backwards


def audit_verify(*, using: str = DEFAULT_DB_ALIAS, chunk: int = VERIFY_CHUNK) -> Verdict:
    """Report the rows left unsealed too long (without sealing them), seal
    the recent ones, then walk the chain by seq in chunks of `chunk` rows
    (memory stays bounded) and stop at the first broken link:

    1. a gap: the row with the next seq is missing (deleted, or its seq moved);
    2. a wrong link: the row's prev_hash is not the previous row's hash;
    3. changed content: the row's hash is not the hash of what it says now.

    On the way, note rows whose time goes backwards: earlier than the latest
    time seen before them by more than FLEET_AUDIT_CLOCK_SKEW_SECONDS. Rows a
    hub mirror wrote (`details.hub`) are timed by the hub's own condition
    times, which may be old, and are not compared.
    """
    stale = m.Event.objects.using(using).filter(seq__isnull=True, recorded__lt=_stale_before())
    stale_ids = list(stale.order_by("id").values_list("id", flat=True)[:REPORT_AT_MOST])
    stale_count = stale.count() if len(stale_ids) == REPORT_AT_MOST else len(stale_ids)
    audit_seal(using=using)
    expected, prev_hash, count = 1, GENESIS, 0
    clock_check = _BackwardTime()
    for row in _chain(using, chunk):
        problem = _check(row, expected, prev_hash)
        if problem:
            return Verdict(count=count, head=prev_hash, broken=problem, seq=expected, id=row["id"],
                           stale=stale_ids, stale_count=stale_count, backwards=clock_check.found)
        clock_check.see(row)
        expected, prev_hash, count = expected + 1, row["hash"], count + 1
    return Verdict(count=count, head=prev_hash, stale=stale_ids, stale_count=stale_count,
                   backwards=clock_check.found)


class _BackwardTime:
    """Notes rows timed earlier than the latest row before them, beyond the skew."""

    def __init__(self):
        self.skew = timedelta(seconds=settings.FLEET_AUDIT_CLOCK_SKEW_SECONDS)
        self.latest = None  # (time, seq)
        self.found: list[str] = []

    def see(self, row: dict) -> None:
        if "hub" in (row["details"] or {}):
            return
        if self.latest is not None and row["time"] < self.latest[0] - self.skew:
            if len(self.found) < REPORT_AT_MOST:
                behind = (self.latest[0] - row["time"]).total_seconds()
                self.found.append(f"seq {row['seq']} (event id {row['id']}) is timed {_utc(row['time'])}, "
                                  f"{behind:.0f} s before seq {self.latest[1]} ({_utc(self.latest[0])})")
            return
        if self.latest is None or row["time"] > self.latest[0]:
            self.latest = (row["time"], row["seq"])


def _utc(moment) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
