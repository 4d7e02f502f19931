"""The append-only trigger on rollouts_event (migration 0006) lets the seal's
UPDATE through by a WHEN condition on the trigger instead of inside its
PL/pgSQL function: the function ran for every row the seal wrote and
compared the whole row as JSON twice (to_jsonb), which doubled the seal's
UPDATE (0.08 → 0.04 ms a row; 31,000 rows for 100 rollouts, all under the
chain lock). What is refused is unchanged: any UPDATE but the seal's (the
three chain columns filled from NULL, every other column as it was), any
DELETE, TRUNCATE, unless the maintenance escape of a role owning the table.

The WHEN condition names each column; a migration adding a column to
Event must add it here too (tests/test_audit_postgres.py checks that the
list is the table's)."""

from django.db import migrations

# Every column of rollouts_event but the chain's: the seal leaves them as they are.
UNCHANGED = ("id", "time", "actor", "action", "object_kind", "object_namespace", "object_name", "run", "reason",
             "message", "details", "recorded")

SEAL = (
    "OLD.seq IS NULL AND OLD.prev_hash IS NULL AND OLD.hash IS NULL "
    "AND NEW.seq IS NOT NULL AND NEW.prev_hash IS NOT NULL AND NEW.hash IS NOT NULL "
    f"AND ({', '.join(f'NEW.{c}' for c in UNCHANGED)}) IS NOT DISTINCT FROM ({', '.join(f'OLD.{c}' for c in UNCHANGED)})"
)

WHEN_SQL = f"""
DROP TRIGGER IF EXISTS rollouts_event_append_only_rows ON rollouts_event;
CREATE TRIGGER rollouts_event_append_only_updates
    BEFORE UPDATE ON rollouts_event
    FOR EACH ROW WHEN (NOT ({SEAL}))
    EXECUTE FUNCTION rollouts_event_append_only();
CREATE TRIGGER rollouts_event_append_only_deletes
    BEFORE DELETE ON rollouts_event
    FOR EACH ROW EXECUTE FUNCTION rollouts_event_append_only();
"""

# As migration 0006 left it.
ROW_SQL = """
DROP TRIGGER IF EXISTS rollouts_event_append_only_updates ON rollouts_event;
DROP TRIGGER IF EXISTS rollouts_event_append_only_deletes ON rollouts_event;
CREATE TRIGGER rollouts_event_append_only_rows
    BEFORE UPDATE OR DELETE ON rollouts_event
    FOR EACH ROW EXECUTE FUNCTION rollouts_event_append_only();
"""


def seal_by_when(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(WHEN_SQL, params=None)


def seal_in_function(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(ROW_SQL, params=None)


class Migration(migrations.Migration):

    dependencies = [
        ('rollouts', '0020_json_lz4'),
    ]

    operations = [
        migrations.RunPython(seal_by_when, seal_in_function),
    ]
