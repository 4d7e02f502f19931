"""One hub-wide resourceVersion (rollouts/models/revisions.py): the counter
(a one-row table on SQLite, a sequence plus the horizon-pinning function on
PostgreSQL) started above every existing row's value, an index on
resource_version of every Fleet table, and the tombstones of deletions."""

from django.db import migrations, models

FLEET_TABLES = [
    "membercluster", "clusterresourceplacement", "resourceplacement", "clusterschedulingpolicysnapshot",
    "schedulingpolicysnapshot", "clusterresourcesnapshot", "resourcesnapshot", "clusterresourcebinding",
    "resourcebinding", "clusterstagedupdatestrategy", "stagedupdatestrategy", "clusterstagedupdaterun",
    "stagedupdaterun", "clusterapprovalrequest", "approvalrequest", "hubresource",
]

PG_CREATE = """
CREATE SEQUENCE IF NOT EXISTS rollouts_hub_rv MINVALUE 1 START 1 CACHE 1;
CREATE OR REPLACE FUNCTION rollouts_next_rv() RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    -- Once per transaction: pin the horizon below every value this transaction draws.
    IF coalesce(current_setting('rollouts.rv_pinned', true), '') <> '1' THEN
        PERFORM pg_advisory_xact_lock_shared((21078::bigint << 48) + (SELECT last_value FROM rollouts_hub_rv));
        PERFORM set_config('rollouts.rv_pinned', '1', true);
    END IF;
    RETURN nextval('rollouts_hub_rv');
END $$;
"""


def start_counter(apps, schema_editor):
    """The counter starts above every resourceVersion already stored."""
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        highest = 0
        for table in FLEET_TABLES:
            cursor.execute(f"SELECT max(resource_version) FROM rollouts_{table}")
            highest = max(highest, cursor.fetchone()[0] or 0)
        if connection.vendor == "postgresql":
            cursor.execute(PG_CREATE)
            # is_called: last_value counts as handed out, so the horizon starts
            # at 1 or above ("0" is a watch's "from the current state").
            cursor.execute("SELECT setval('rollouts_hub_rv', %s, true)", [max(highest, 1)])
    apps.get_model("rollouts", "HubRevision").objects.update_or_create(pk=1, defaults={"value": max(highest, 1)})


def drop_counter(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION IF EXISTS rollouts_next_rv(); DROP SEQUENCE IF EXISTS rollouts_hub_rv;")


class Migration(migrations.Migration):

    dependencies = [
        ('rollouts', '0017_api_tokens'),
    ]

    operations = [
        migrations.CreateModel(
            name='HubRevision',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('value', models.BigIntegerField(default=0)),
                ('compacted', models.BigIntegerField(default=0)),
            ],
        ),
        migrations.AlterField(
            model_name='approvalrequest',
            name='resource_version',
            field=models.BigIntegerField(db_index=True, default=1),
        ),
        migrations.AlterField(
            model_name='clusterapprovalrequest',
            name='resource_version',
            field=models.BigIntegerField(db_index=True, default=1),
        ),
        migrations.AlterField(
            model_name='clusterresourcebinding',
            name='resource_version',
            field=models.BigIntegerField(db_index=True, default=1),
        ),
        migrations.AlterField(
            model_name='clusterresourceplacement',
            name='resource_version',
            field=models.BigIntegerField(db_index=True, default=1),
        ),
        migrations.AlterField(
            model_name='clusterresourcesnapshot',
            name='resource_version',
            field=models.BigIntegerField(db_index=True, default=1),
        ),
        migrations.AlterField(
            model_name='clusterschedulingpolicysnapshot',
            name='resource_version',
            field=models.BigIntegerField(db_index=True, default=1),
        ),
        migrations.AlterField(
            model_name='clusterstagedupdaterun',
            name='resource_version',
            field=models.BigIntegerField(db_index=True, default=1),
        ),
        migrations.AlterField(
            model_name='clusterstagedupdatestrategy',
            name='resource_version',
            field=models.BigIntegerField(db_index=True, default=1),
        ),
        migrations.AlterField(
            model_name='hubresource',
            name='resource_version',
            field=models.BigIntegerField(db_index=True, default=1),
        ),
        migrations.AlterField(
            model_name='membercluster',
            name='resource_version',
            field=models.BigIntegerField(db_index=True, default=1),
        ),
        migrations.AlterField(
            model_name='resourcebinding',
            name='resource_version',
            field=models.BigIntegerField(db_index=True, default=1),
        ),
        migrations.AlterField(
            model_name='resourceplacement',
            name='resource_version',
            field=models.BigIntegerField(db_index=True, default=1),
        ),
        migrations.AlterField(
            model_name='resourcesnapshot',
            name='resource_version',
            field=models.BigIntegerField(db_index=True, default=1),
        ),
        migrations.AlterField(
            model_name='schedulingpolicysnapshot',
            name='resource_version',
            field=models.BigIntegerField(db_index=True, default=1),
        ),
        migrations.AlterField(
            model_name='stagedupdaterun',
            name='resource_version',
            field=models.BigIntegerField(db_index=True, default=1),
        ),
        migrations.AlterField(
            model_name='stagedupdatestrategy',
            name='resource_version',
            field=models.BigIntegerField(db_index=True, default=1),
        ),
        migrations.CreateModel(
            name='Tombstone',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('resource_version', models.BigIntegerField(unique=True)),
                ('model', models.CharField(max_length=100)),
                ('api_group', models.CharField(blank=True, default='', max_length=253)),
                ('kind', models.CharField(max_length=63)),
                ('namespace', models.CharField(blank=True, default='', max_length=253)),
                ('name', models.CharField(max_length=253)),
                ('uid', models.UUIDField()),
                ('row', models.JSONField(default=dict)),
                ('deleted_at', models.DateTimeField(db_index=True)),
            ],
            options={
                'indexes': [models.Index(fields=['model', 'resource_version'], name='rollouts_to_model_5e2af0_idx')],
            },
        ),
        migrations.RunPython(start_counter, drop_counter),
    ]
