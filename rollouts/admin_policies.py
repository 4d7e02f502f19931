"""The Django admin for approval policies and the votes cast under them.

Policies made here have source "admin". Policies on a placement or on
clusters (by label selector) are made only here: they protect what the
strategy's author does not own. Rows from a strategy's
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
from rollouts.api.errors import BadRequest
from rollouts.api.labels import parse_selector, selector_problem
from rollouts.services.events import record

Scope = m.ApprovalPolicy.Scope
# The fields each scope needs, and those it must leave empty.
_SCOPE_FIELDS = {
    Scope.GATE: ("strategy_name", "stage", "gate"),
    Scope.PLACEMENT: ("name", "placement_name"),
    Scope.CLUSTERS: ("name", "cluster_selector"),
}
_TARGET_FIELDS = ("strategy_namespace", "strategy_name", "stage", "gate", "placement_namespace", "placement_name",
                  "cluster_selector")


class ApprovalPolicyForm(forms.ModelForm):
    class Meta:
        model = m.ApprovalPolicy
        fields = ("scope", "name", "strategy_kind", "strategy_namespace", "strategy_name", "stage", "gate",
                  "placement_namespace", "placement_name", "cluster_selector", "groups", "quorum", "four_eyes")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["scope"].required = False  # a gate of a strategy, as before scopes existed

    def clean_scope(self):
        return self.cleaned_data.get("scope") or Scope.GATE

    def clean_cluster_selector(self):
        text = (self.cleaned_data.get("cluster_selector") or "").strip()
        if text:
            try:
                selector = parse_selector(text)
            except BadRequest as exc:
                raise forms.ValidationError(f"Not a label selector: {exc}.") from None
            problem = selector_problem(selector)
            if problem or not selector:
                raise forms.ValidationError(f"Not a label selector: {problem or 'it selects every cluster'}.")
        return text

    def clean(self):
        """Each scope names what it protects, and only that."""
        data = super().clean()
        scope = data.get("scope") or Scope.GATE
        data["scope"] = scope
        for field in _SCOPE_FIELDS.get(scope, ()):
            if not data.get(field) and field not in self.errors:
                self.add_error(field, f"Required for a policy on {Scope(scope).label}.")
        keep = set(_SCOPE_FIELDS.get(scope, ())) | ({"strategy_namespace"} if scope == Scope.GATE else set()) | (
            {"placement_namespace"} if scope == Scope.PLACEMENT else set())
        for field in _TARGET_FIELDS:
            if field not in keep and data.get(field):
                self.add_error(field, f"Leave empty for a policy on {Scope(scope).label}.")
        return data

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
    list_display = ("__str__", "scope", "strategy_name", "strategy_namespace", "stage", "gate", "placement_name",
                    "cluster_selector", "groups", "quorum", "four_eyes", "source")
    list_filter = ("scope", "source", "gate", "four_eyes")
    search_fields = ("name", "strategy_name", "stage", "placement_name", "cluster_selector")

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
    namespace = policy.placement_namespace if policy.scope == Scope.PLACEMENT else policy.strategy_namespace
    rule = {"groups": policy.groups, "quorum": policy.quorum, "fourEyes": policy.four_eyes}
    if policy.scope != Scope.GATE:
        rule = {"scope": policy.scope, "target": policy.target, **rule}
    record(actor=request.user.get_username(), action=action, kind_name="ApprovalPolicy", name=str(policy),
           namespace=namespace, message=policy.summary,
           details={"via": "admin", "client_address": request.META.get("REMOTE_ADDR", ""), "policy": rule})


@admin.register(m.ApprovalVote)
class ApprovalVoteAdmin(AppendOnlyAdmin):
    """Votes are append-only: read-only here."""

    list_display = ("time", "actor", "request_name", "run", "stage", "gate", "epoch", "snapshot", "via")
    list_filter = ("gate",)
    search_fields = ("request_name", "run", "actor")
