# The tamper-evident audit chain (issue 8): the chain columns on Event, and on
# PostgreSQL a trigger that keeps rollouts_event append-only (docs/audit.md).
from django.db import migrations, models

# Refuses UPDATE, DELETE and TRUNCATE on rollouts_event, for every role,
# except:
#   * the seal: an UPDATE that only fills seq/prev_hash/hash of a row whose
#     chain columns are still NULL (rollouts.services.audit.audit_seal);
#   * maintenance: `SET fleetui.audit_maintenance = 'on'` in a session whose
#     role is a member of the table's owner. Such a role could drop this
#     trigger anyway; the setting only spares it the DDL. Make the
#     application's role another role (docs/audit.md) and it has no way out.
APPEND_ONLY_SQL = """
CREATE OR REPLACE FUNCTION rollouts_event_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('fleetui.audit_maintenance', true) = 'on'
       AND pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = TG_RELID), 'MEMBER') THEN
        IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
        RETURN NEW;
    END IF;
    IF TG_OP = 'UPDATE'
       AND OLD.seq IS NULL AND OLD.prev_hash IS NULL AND OLD.hash IS NULL
       AND NEW.seq IS NOT NULL AND NEW.prev_hash IS NOT NULL AND NEW.hash IS NOT NULL
       AND to_jsonb(NEW) - 'seq' - 'prev_hash' - 'hash' = to_jsonb(OLD) - 'seq' - 'prev_hash' - 'hash' THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'rollouts_event is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'the audit log cannot be changed; see docs/audit.md';
END;
$$;
CREATE TRIGGER rollouts_event_append_only_rows
    BEFORE UPDATE OR DELETE ON rollouts_event
    FOR EACH ROW EXECUTE FUNCTION rollouts_event_append_only();
CREATE TRIGGER rollouts_event_append_only_truncate
    BEFORE TRUNCATE ON rollouts_event
    FOR EACH STATEMENT EXECUTE FUNCTION rollouts_event_append_only();
"""

DROP_SQL = """
DROP TRIGGER IF EXISTS rollouts_event_append_only_rows ON rollouts_event;
DROP TRIGGER IF EXISTS rollouts_event_append_only_truncate ON rollouts_event;
DROP FUNCTION IF EXISTS rollouts_event_append_only();
"""


def install_trigger(apps, schema_editor):
    # SQLite gets none: whoever can write the file can drop a trigger, and the
    # test suite flushes SQLite tables between transactional tests. The hash
    # chain is what detects tampering there.
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(APPEND_ONLY_SQL, params=None)


def remove_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_SQL, params=None)


class Migration(migrations.Migration):
    dependencies = [("rollouts", "0005_hub_connections")]
    operations = [
        migrations.AddField(
            model_name="event",
            name="seq",
            field=models.BigIntegerField(blank=True, editable=False, null=True, unique=True),
        ),
        migrations.AddField(
            model_name="event",
            name="prev_hash",
            field=models.CharField(blank=True, editable=False, max_length=64, null=True),
        ),
        migrations.AddField(
            model_name="event",
            name="hash",
            field=models.CharField(blank=True, editable=False, max_length=64, null=True),
        ),
        migrations.AlterField(
            model_name="event",
            name="action",
            field=models.CharField(
                choices=[
                    ("created", "Created"), ("configured", "Configured"), ("patched", "Patched"),
                    ("deleted", "Deleted"), ("approved", "Approved"), ("rejected", "Rejected"),
                    ("denied", "Denied"), ("state-changed", "State Changed"), ("condition", "Condition"),
                    ("login", "Login"), ("login-failed", "Login Failed"), ("logout", "Logout"),
                ],
                db_index=True,
                max_length=32,
            ),
        ),
        migrations.AddIndex(
            model_name="event",
            index=models.Index(condition=models.Q(("seq__isnull", True)), fields=["id"], name="event_unsealed"),
        ),
        migrations.RunPython(install_trigger, remove_trigger, elidable=False),
    ]
