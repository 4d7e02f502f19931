# Approval policies per strategy stage and gate, and the append-only votes cast under them (issue 8).

import django.core.validators
from django.db import migrations, models

GATES = [("before", "before stage (beforeStageTasks)"), ("after", "after stage (afterStageTasks)")]


class Migration(migrations.Migration):
    dependencies = [("rollouts", "0006_audit_chain")]

    operations = [
        migrations.CreateModel(
            name="ApprovalPolicy",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("strategy_kind", models.CharField(choices=[("ClusterStagedUpdateStrategy", "ClusterStagedUpdateStrategy"), ("StagedUpdateStrategy", "StagedUpdateStrategy")], default="ClusterStagedUpdateStrategy", max_length=63)),
                ("strategy_namespace", models.CharField(blank=True, default="", max_length=253)),
                ("strategy_name", models.CharField(max_length=253)),
                ("stage", models.CharField(max_length=63)),
                ("gate", models.CharField(choices=GATES, max_length=8)),
                ("groups", models.JSONField(blank=True, default=list, help_text='Django group names, e.g. ["sre"]; empty: anyone who may approve.')),
                ("quorum", models.PositiveSmallIntegerField(default=1, validators=[django.core.validators.MinValueValidator(1)])),
                ("four_eyes", models.BooleanField(default=False, help_text="The person who started the run may not approve it.")),
                ("source", models.CharField(choices=[("annotation", "Annotation"), ("admin", "Admin")], default="admin", max_length=16)),
            ],
            options={
                "verbose_name_plural": "approval policies",
                "ordering": ["strategy_kind", "strategy_namespace", "strategy_name", "stage", "gate"],
                "constraints": [
                    models.UniqueConstraint(fields=("strategy_kind", "strategy_namespace", "strategy_name", "stage", "gate", "source"), name="approvalpolicy_unique_gate"),
                    models.CheckConstraint(condition=models.Q(("quorum__gte", 1)), name="approvalpolicy_quorum_positive"),
                ],
            },
        ),
        migrations.CreateModel(
            name="ApprovalVote",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("request_kind", models.CharField(max_length=63)),
                ("request_namespace", models.CharField(blank=True, default="", max_length=253)),
                ("request_name", models.CharField(max_length=253)),
                ("run", models.CharField(max_length=253)),
                ("stage", models.CharField(max_length=63)),
                ("gate", models.CharField(choices=GATES, max_length=8)),
                ("actor", models.CharField(max_length=150)),
                ("time", models.DateTimeField()),
                ("comment", models.TextField(blank=True, default="")),
                ("client_address", models.CharField(blank=True, default="", max_length=64)),
                ("via", models.CharField(blank=True, default="", max_length=16)),
                ("run_uid", models.CharField(max_length=64)),
                ("epoch", models.BigIntegerField(default=0)),
                ("snapshot", models.CharField(blank=True, default="", max_length=253)),
                ("snapshot_version", models.CharField(blank=True, default="", max_length=80)),
            ],
            options={
                "ordering": ["id"],
                "indexes": [models.Index(fields=["request_kind", "request_namespace", "request_name", "id"], name="rollouts_ap_request_629c26_idx")],
                "constraints": [models.UniqueConstraint(fields=("request_kind", "request_namespace", "request_name", "actor", "run_uid", "epoch", "snapshot", "snapshot_version"), name="approvalvote_one_per_person_and_binding")],
            },
        ),
    ]
