"""The Django admin for approval policies and the votes cast under them.

Policies made here have source "admin". Rows from a strategy's
`fleetui.io/approval-policy` annotation are shown read-only: they change
with the strategy (`fleet apply`), and for the same gate they win over an
admin row (docs/approval-policies.md). Every change made here is also an
audit Event, like a change made with `fleet`. Votes are append-only.
"""

from django import forms
from django.contrib import admin
from django.contrib.auth.models import Group

from rollouts import models as m
from rollouts.admin_base import AppendOnlyAdmin
from rollouts.services.events import record


class ApprovalPolicyForm(forms.ModelForm):
    class Meta:
        model = m.ApprovalPolicy
        fields = ("strategy_kind", "strategy_namespace", "strategy_name", "stage", "gate", "groups", "quorum",
                  "four_eyes")

    def clean_groups(self):
        groups = self.cleaned_data.get("groups") or []
        if not isinstance(groups, list) or not all(isinstance(g, str) and g.strip() for g in groups):
            raise forms.ValidationError('A list of group names, e.g. ["sre"]; [] for anyone who may approve.')
        unknown = sorted(set(groups) - set(Group.objects.filter(name__in=groups).values_list("name", flat=True)))
        if unknown:
            raise forms.ValidationError(f"No such group: {', '.join(unknown)}.")
        return groups


@admin.register(m.ApprovalPolicy)
class ApprovalPolicyAdmin(admin.ModelAdmin):
    form = ApprovalPolicyForm
    list_display = ("strategy_name", "strategy_namespace", "stage", "gate", "groups", "quorum", "four_eyes", "source")
    list_filter = ("source", "gate", "four_eyes")
    search_fields = ("strategy_name", "stage")

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and (obj is None or obj.source != "annotation")

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and (obj is None or obj.source != "annotation")

    def save_model(self, request, obj, form, change):
        obj.source = m.ApprovalPolicy.Source.ADMIN
        super().save_model(request, obj, form, change)
        _audit(request, obj, m.Event.Action.CONFIGURED if change else m.Event.Action.CREATED)

    def delete_model(self, request, obj):
        _audit(request, obj, m.Event.Action.DELETED)
        super().delete_model(request, obj)


def _audit(request, policy: m.ApprovalPolicy, action: str) -> None:
    record(actor=request.user.get_username(), action=action, kind_name="ApprovalPolicy", name=str(policy),
           namespace=policy.strategy_namespace, message=policy.summary,
           details={"via": "admin", "client_address": request.META.get("REMOTE_ADDR", ""),
                    "policy": {"groups": policy.groups, "quorum": policy.quorum, "fourEyes": policy.four_eyes}})


@admin.register(m.ApprovalVote)
class ApprovalVoteAdmin(AppendOnlyAdmin):
    """Votes are append-only: read-only here."""

    list_display = ("time", "actor", "request_name", "run", "stage", "gate", "epoch", "snapshot", "via")
    list_filter = ("gate",)
    search_fields = ("request_name", "run", "actor")
