"""Approval policies for stage gates, and the votes cast under them.

A policy says who may approve one gate of a strategy (before or after one
stage), how many distinct people must, and whether the person who started
the run is excluded (four-eyes). Policies come from the strategy's
`fleetui.io/approval-policy` annotation (kept in sync on every apply) or are
made in the Django admin; docs/approval-policies.md has the rules.

Votes are append-only: a vote is never changed, it only stops counting when
the run it saw is stopped and resumed, or its snapshot changes.
"""

from django.core.validators import MinValueValidator
from django.db import models


class ApprovalPolicy(models.Model):
    """Who may open a gate, and how many must.

    scope: what the policy is attached to.
      gate: one gate of one strategy (strategy_* fields, stage, gate).
      placement: every run of one placement (placement_namespace,
        placement_name), whatever its strategy: the gate protecting each
        stage with clusters must meet it (engine.protection).
      clusters: every run that updates a member cluster matching
        cluster_selector (`environment=prod`), whatever its placement.
    name: how messages name a placement or clusters policy.
    strategy_kind/strategy_namespace/strategy_name: the strategy it governs.
    stage/gate: the stage name and which of its gates (before or after).
    groups: Django group names; an approver must be in one of them. Empty:
        anyone with the approve permission.
    quorum: distinct approvers needed before the gate opens.
    four_eyes: the person who started the run may not approve it.
    source: annotation rows are rewritten on every apply of the strategy and
        win over admin rows for the same strategy (see services.policies).
    """

    class Gate(models.TextChoices):
        BEFORE = "before", "before stage (beforeStageTasks)"
        AFTER = "after", "after stage (afterStageTasks)"

    class Source(models.TextChoices):
        ANNOTATION = "annotation"
        ADMIN = "admin"

    class Scope(models.TextChoices):
        GATE = "gate", "a gate of a strategy"
        PLACEMENT = "placement", "every run of a placement"
        CLUSTERS = "clusters", "every run updating clusters matching a label selector"

    scope = models.CharField(max_length=16, choices=Scope.choices, default=Scope.GATE)
    name = models.CharField(max_length=63, blank=True, default="",
                            help_text="How messages name a placement or clusters policy, e.g. prod-clusters.")
    placement_namespace = models.CharField(max_length=253, blank=True, default="",
                                           help_text="Empty for a ClusterResourcePlacement.")
    placement_name = models.CharField(max_length=253, blank=True, default="")
    cluster_selector = models.CharField(max_length=1000, blank=True, default="",
                                        help_text="Member cluster labels, e.g. environment=prod.")

    strategy_kind = models.CharField(
        max_length=63, default="ClusterStagedUpdateStrategy",
        choices=[("ClusterStagedUpdateStrategy", "ClusterStagedUpdateStrategy"),
                 ("StagedUpdateStrategy", "StagedUpdateStrategy")])
    strategy_namespace = models.CharField(max_length=253, blank=True, default="")
    strategy_name = models.CharField(max_length=253, blank=True, default="")
    stage = models.CharField(max_length=63, blank=True, default="")
    gate = models.CharField(max_length=8, choices=Gate.choices, blank=True, default="")
    groups = models.JSONField(default=list, blank=True,
                              help_text="Django group names, e.g. [\"sre\"]; empty: anyone who may approve.")
    quorum = models.PositiveSmallIntegerField(default=1, validators=[MinValueValidator(1)])
    four_eyes = models.BooleanField(default=False, help_text="The person who started the run may not approve it.")
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.ADMIN)

    class Meta:
        ordering = ["scope", "strategy_kind", "strategy_namespace", "strategy_name", "stage", "gate",
                    "placement_namespace", "placement_name", "cluster_selector"]
        verbose_name_plural = "approval policies"
        constraints = [
            models.UniqueConstraint(
                fields=["strategy_kind", "strategy_namespace", "strategy_name", "stage", "gate", "source"],
                condition=models.Q(scope="gate"), name="approvalpolicy_unique_gate"),
            models.UniqueConstraint(fields=["placement_namespace", "placement_name"],
                                    condition=models.Q(scope="placement"), name="approvalpolicy_unique_placement"),
            models.UniqueConstraint(fields=["cluster_selector"], condition=models.Q(scope="clusters"),
                                    name="approvalpolicy_unique_clusters"),
            models.CheckConstraint(condition=models.Q(quorum__gte=1), name="approvalpolicy_quorum_positive"),
        ]

    def __str__(self):
        if self.scope == self.Scope.PLACEMENT:
            return self.name or f"placement {self.placement_name}"
        if self.scope == self.Scope.CLUSTERS:
            return self.name or f"clusters {self.cluster_selector}"
        return f"{self.strategy_name}/{self.stage}/{self.gate}"

    @property
    def target(self) -> str:
        """What a placement or clusters policy protects: `environment=prod`."""
        if self.scope == self.Scope.PLACEMENT:
            where = f"{self.placement_namespace}/" if self.placement_namespace else ""
            return f"placement {where}{self.placement_name}"
        return self.cluster_selector

    @property
    def described(self) -> str:
        """`approval policy example-strategy/prod/after: quorum 2, group sre`, or
        `approval policy "prod-clusters" (environment=prod; quorum 2, group sre)`."""
        if self.scope == self.Scope.GATE:
            return f"approval policy {self}: {self.summary}"
        title = f'"{self.name}" ' if self.name else ""
        return f"approval policy {title}({self.target}; {self.summary})"

    @property
    def summary(self) -> str:
        """`quorum 2, groups sre, four-eyes`: the policy in one phrase."""
        parts = [f"quorum {self.quorum}"]
        if self.groups:
            parts.append(f"group{'s' if len(self.groups) > 1 else ''} {', '.join(self.groups)}")
        if self.four_eyes:
            parts.append("four-eyes")
        return ", ".join(parts)


class ApprovalVote(models.Model):
    """One person's approval of one gate, bound to what they saw. Never updated.

    request_kind/request_namespace/request_name: the approval request.
    run/stage/gate: the gate it approves (gate: before | after).
    actor/time/comment/client_address/via: who, when, why, from where, how.
    run_uid/epoch/snapshot/snapshot_version: the binding. The vote counts
        only while the run is the same object (uid), has not been stopped and
        resumed since (epoch: id of the run's latest state-changed Event, 0
        for none), and rolls out the same snapshot (name, and uid/generation).
    """

    request_kind = models.CharField(max_length=63)
    request_namespace = models.CharField(max_length=253, blank=True, default="")
    request_name = models.CharField(max_length=253)
    run = models.CharField(max_length=253)
    stage = models.CharField(max_length=63)
    gate = models.CharField(max_length=8, choices=ApprovalPolicy.Gate.choices)
    actor = models.CharField(max_length=150)
    time = models.DateTimeField()
    comment = models.TextField(blank=True, default="")
    client_address = models.CharField(max_length=64, blank=True, default="")
    via = models.CharField(max_length=16, blank=True, default="")
    run_uid = models.CharField(max_length=64)
    epoch = models.BigIntegerField(default=0)
    snapshot = models.CharField(max_length=253, blank=True, default="")
    snapshot_version = models.CharField(max_length=80, blank=True, default="")

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["request_kind", "request_namespace", "request_name", "id"])]
        # A second vote by one person under one binding is refused by the
        # service; the constraint keeps it so under any race.
        constraints = [models.UniqueConstraint(
            fields=["request_kind", "request_namespace", "request_name", "actor", "run_uid", "epoch", "snapshot",
                    "snapshot_version"], name="approvalvote_one_per_person_and_binding")]

    def __str__(self):
        return f"{self.actor} approved {self.request_name} at {self.time:%Y-%m-%dT%H:%M:%S}"

    @property
    def binding(self) -> tuple:
        return (self.run_uid, self.epoch, self.snapshot, self.snapshot_version)
