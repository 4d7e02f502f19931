"""The audit log on real PostgreSQL: the migration's trigger refuses UPDATE,
DELETE and TRUNCATE from the application's own connection, the maintenance
escape works only for the table's owner, writers in parallel still build
one chain, and `fleet audit verify` finds tampering.

The database is migrated and written by `manage.py` processes (the real
settings with DATABASE_URL), and tampered with over plain psycopg."""

import subprocess
import sys
import uuid

import pytest

from .real_services import ROOT, postgres_database, process_env

pytestmark = pytest.mark.slow

APPEND = """
from rollouts.services.events import record
for i in range({count}):
    record(actor="{actor}", action="patched", kind_name="ConfigMap", name=f"cm-{{i}}", details={{"i": i}})
"""

# Writers in threads, each appending in its own transactions while holding
# a row lock, as the engine does; the seal runs after each commit.
PARALLEL = """
import threading
from django.db import connection, transaction
from rollouts import models as m
from rollouts.services.events import record

def writer(n):
    for i in range(10):
        with transaction.atomic():
            list(m.Event.objects.select_for_update().filter(pk=1))
            for j in range(3):
                record(actor=f"writer-{n}", action="condition", kind_name="ClusterStagedUpdateRun", name=f"r{n}")
    connection.close()

threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
[t.start() for t in threads]
[t.join() for t in threads]
"""


# docs/audit.md's grants for an application role that does not own the tables.
APP_ROLE_GRANTS = """
GRANT USAGE ON SCHEMA public TO {role};
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role};
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role};
REVOKE UPDATE, DELETE, TRUNCATE ON rollouts_event FROM {role};
GRANT UPDATE (seq, prev_hash, hash) ON rollouts_event TO {role};
"""


class Database:
    """One migrated PostgreSQL database; `manage()` runs manage.py on it."""

    def __init__(self, url: str):
        self.url = url
        self.env = process_env(DATABASE_URL=url, REDIS_URL="", LOG_LEVEL="WARNING")

    def manage(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True,
                              text=True, timeout=300)

    def shell(self, code: str) -> None:
        done = self.manage("shell", "-c", code)
        assert done.returncode == 0, done.stderr[-2000:]

    def connect(self, **kwargs):
        import psycopg

        return psycopg.connect(self.url.replace("postgres://", "postgresql://"), autocommit=True, **kwargs)

    def sql(self, query: str, *params) -> list[tuple]:
        with self.connect() as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def tamper(self, query: str, *params) -> None:
        """What the table's owner can do: the maintenance escape."""
        with self.connect() as conn, conn.transaction():
            conn.execute("SET LOCAL fleetui.audit_maintenance = 'on'")
            conn.execute(query, params)


@pytest.fixture
def app_role(db_pg):
    """A login role that does not own the tables (dropped afterwards)."""
    role = f"fleet_app_{uuid.uuid4().hex[:8]}"
    db_pg.sql(f"CREATE ROLE {role} LOGIN")
    try:
        yield role
    finally:
        db_pg.sql(f"REASSIGN OWNED BY {role} TO postgres")
        db_pg.sql(f"DROP OWNED BY {role}")
        db_pg.sql(f"DROP ROLE {role}")


@pytest.fixture(scope="module")
def db_pg():
    url, drop = postgres_database()
    database = Database(url)
    try:
        yield database
    finally:
        drop()  # DROP DATABASE: the trigger guards rows, not the database


@pytest.fixture
def log(db_pg):
    """A fresh log of 5 sealed events (the owner empties the table first)."""
    db_pg.tamper("TRUNCATE rollouts_event RESTART IDENTITY")
    db_pg.shell(APPEND.format(count=5, actor="olivia"))
    return db_pg


def test_each_append_is_sealed_after_its_commit(log):
    rows = log.sql("SELECT id, seq FROM rollouts_event ORDER BY id")
    assert rows == [(i, i) for i in range(1, 6)]


@pytest.mark.parametrize("statement", [
    pytest.param("UPDATE rollouts_event SET message = 'x' WHERE id = 2", id="update"),
    pytest.param("UPDATE rollouts_event SET hash = repeat('0', 64) WHERE id = 2", id="reseal"),
    pytest.param("DELETE FROM rollouts_event WHERE id = 2", id="delete"),
    pytest.param("TRUNCATE rollouts_event", id="truncate"),
])
def test_the_trigger_refuses_changes_from_the_applications_connection(log, statement):
    import psycopg

    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        log.sql(statement)
    assert log.sql("SELECT count(*) FROM rollouts_event") == [(5,)]


def test_the_maintenance_escape_is_refused_to_a_role_that_does_not_own_the_table(log, app_role):
    import psycopg

    log.sql(f"GRANT SELECT, INSERT, UPDATE, DELETE ON rollouts_event TO {app_role}")
    with log.connect(user=app_role) as conn:
        conn.execute("SET fleetui.audit_maintenance = 'on'")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            conn.execute("DELETE FROM rollouts_event WHERE id = 1")


def test_an_application_role_with_the_documented_grants_appends_and_seals_but_cannot_delete(log, app_role):
    import psycopg

    for statement in APP_ROLE_GRANTS.format(role=app_role).strip().splitlines():
        log.sql(statement)
    as_app = Database(log.url.replace("postgres@", f"{app_role}@"))
    as_app.shell(APPEND.format(count=3, actor="app"))
    done = as_app.manage("fleet", "audit", "verify")
    assert (done.returncode, done.stdout.split(",")[0]) == (0, "audit log intact: 8 events")
    with as_app.connect() as conn, pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
        conn.execute("DELETE FROM rollouts_event WHERE id = 1")


def test_verify_passes_and_then_reports_the_first_tampered_row(log):
    done = log.manage("fleet", "audit", "verify")
    head = log.sql("SELECT hash FROM rollouts_event WHERE seq = 5")[0][0]
    assert (done.returncode, done.stdout) == (0, f"audit log intact: 5 events, head {head}\n")

    log.tamper("UPDATE rollouts_event SET details = '{\"i\": 99}' WHERE id = 3")
    log.tamper("DELETE FROM rollouts_event WHERE id = 4")
    done = log.manage("fleet", "audit", "verify")
    assert done.returncode == 1
    assert done.stderr.startswith("audit log broken at seq 3 (event id 3): content changed")


def test_a_deleted_row_is_a_gap_on_postgresql(log):
    log.tamper("DELETE FROM rollouts_event WHERE id = 2")
    done = log.manage("fleet", "audit", "verify")
    assert (done.returncode, done.stderr.split(":")[0]) == (1, "audit log broken at seq 2 (event id 3)")
    assert "row missing" in done.stderr


def test_parallel_writers_holding_row_locks_build_one_intact_chain(log):
    log.shell(PARALLEL)
    assert log.sql("SELECT count(*), count(seq), max(seq) FROM rollouts_event") == [(125, 125, 125)]
    done = log.manage("fleet", "audit", "verify")
    assert (done.returncode, done.stdout.split(",")[0]) == (0, "audit log intact: 125 events")


def test_a_row_slipped_in_by_sql_and_left_unsealed_is_reported_not_sealed(log):
    log.sql("INSERT INTO rollouts_event (time, actor, action, object_kind, object_namespace, object_name, run, "
            "reason, message, details, recorded) VALUES (now() - interval '1 hour', 'mallory', 'approved', "
            "'ClusterApprovalRequest', '', 'prod-gate', '', '', '', '{}', now() - interval '5 minutes')")
    log.shell(APPEND.format(count=2, actor="olivia"))  # their seal leaves the old row alone
    done = log.manage("fleet", "audit", "verify")
    assert done.returncode == 1
    assert done.stdout.startswith("audit log chain intact: 7 events")
    assert "1 events left unsealed for more than 60 s, not sealed (event ids 6)" in done.stderr
    assert log.sql("SELECT seq FROM rollouts_event WHERE actor = 'mallory'") == [(None,)]


SLIPPED_IN = ("INSERT INTO rollouts_event (time, actor, action, object_kind, object_namespace, object_name, run, "
              "reason, message, details) VALUES (now(), 'mallory', 'approved', 'ClusterApprovalRequest', '', "
              "'prod-gate', '', '', 'ok', '{}') RETURNING id")
SEAL = "UPDATE rollouts_event SET seq = 99, prev_hash = repeat('a', 64), hash = repeat('b', 64){more} WHERE id = %s"


@pytest.mark.parametrize("more", [
    pytest.param(", message = 'rewritten'", id="text"),
    pytest.param(", details = '{\"x\": 1}'", id="details"),
    pytest.param(", recorded = now() - interval '1 day'", id="recorded"),
    pytest.param(", time = now() - interval '1 day'", id="time"),
])
def test_a_seal_that_also_changes_the_row_is_refused(log, more):
    import psycopg

    row_id = log.sql(SLIPPED_IN)[0][0]
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        log.sql(SEAL.format(more=more), row_id)
    assert log.sql("SELECT seq, message FROM rollouts_event WHERE id = %s", row_id) == [(None, "ok")]
    log.sql(SEAL.format(more=""), row_id)  # the chain columns alone, from NULL: the seal's update
    assert log.sql("SELECT seq FROM rollouts_event WHERE id = %s", row_id) == [(99,)]
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        log.sql("UPDATE rollouts_event SET seq = 100 WHERE id = %s", row_id)  # sealed once, never again


def test_the_triggers_seal_condition_names_every_column_but_the_chains(log):
    """Migration 0021's WHEN lists the columns a seal leaves as they are: a
    column added to Event without being added there could be rewritten by
    an UPDATE shaped like a seal."""
    import importlib

    listed = importlib.import_module("rollouts.migrations.0021_event_seal_trigger_when").UNCHANGED
    columns = {name for (name,) in log.sql("SELECT column_name FROM information_schema.columns "
                                           "WHERE table_name = 'rollouts_event'")}
    assert set(listed) == columns - {"seq", "prev_hash", "hash"}
    triggers = {name for (name,) in log.sql("SELECT tgname FROM pg_trigger WHERE tgrelid = 'rollouts_event'::regclass "
                                            "AND NOT tgisinternal")}
    assert triggers == {"rollouts_event_append_only_updates", "rollouts_event_append_only_deletes",
                        "rollouts_event_append_only_truncate"}
