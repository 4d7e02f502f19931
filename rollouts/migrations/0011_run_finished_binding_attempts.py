# Runs remember when they finished; bindings count failed apply attempts, and
# those the member agent has work on are indexed.

from datetime import datetime

from django.db import migrations, models
from django.utils import timezone


def _finished_time(status):
    """The terminal condition's time: Succeeded (True or False), or Initialized=False."""
    for cond in (status or {}).get("conditions") or []:
        if cond.get("type") == "Succeeded" or (cond.get("type") == "Initialized" and cond.get("status") == "False"):
            try:
                return datetime.fromisoformat(cond["lastTransitionTime"].replace("Z", "+00:00"))
            except (KeyError, TypeError, ValueError, AttributeError):
                break
    return None


def backfill_finished_at(apps, schema_editor):
    now = timezone.now()
    for model in ("ClusterStagedUpdateRun", "StagedUpdateRun"):
        Run = apps.get_model("rollouts", model)
        for run in Run.objects.filter(active=False).only("pk", "status").iterator():
            Run.objects.filter(pk=run.pk).update(finished_at=_finished_time(run.status) or now)


class Migration(migrations.Migration):

    dependencies = [
        ('rollouts', '0010_security_hardening'),
    ]

    operations = [
        migrations.AddField(
            model_name='clusterresourcebinding',
            name='failed_attempts',
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name='clusterresourcebinding',
            name='failed_generation',
            field=models.BigIntegerField(default=0),
        ),
        migrations.AddField(
            model_name='clusterstagedupdaterun',
            name='finished_at',
            field=models.DateTimeField(blank=True, db_index=True, null=True),
        ),
        migrations.AddField(
            model_name='resourcebinding',
            name='failed_attempts',
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name='resourcebinding',
            name='failed_generation',
            field=models.BigIntegerField(default=0),
        ),
        migrations.AddField(
            model_name='stagedupdaterun',
            name='finished_at',
            field=models.DateTimeField(blank=True, db_index=True, null=True),
        ),
        migrations.RunPython(backfill_finished_at, migrations.RunPython.noop),
        # The member agent's pending bindings, indexed apart from the done ones.
        migrations.AddIndex(
            model_name='clusterresourcebinding',
            index=models.Index(condition=models.Q(('spec__state', 'Bound'), models.Q(('applied_generation', models.F('generation')), _negated=True)), fields=['id'], name='crb_pending_apply'),
        ),
        migrations.AddIndex(
            model_name='resourcebinding',
            index=models.Index(condition=models.Q(('spec__state', 'Bound'), models.Q(('applied_generation', models.F('generation')), _negated=True)), fields=['id'], name='rb_pending_apply'),
        ),
    ]
