"""The Django admin over every hub object: a place to look things up and,
rarely, fix one by hand.

Objects are created with `fleet apply` (it validates, links placement
children to their placement and records who did it), so the admin cannot add
them. An edit or delete goes through the same services as `fleet patch` and
`fleet delete`: it bumps generation/resourceVersion, is refused if someone
changed the object since the page was opened, lands in the audit log, and
wakes the engine. A plain `obj.save()` would do none of that.
"""

from django import forms
from django.contrib import admin

# Approval policies (editable) and their votes (read-only); hub connections
# and member credentials (write-only kubeconfig forms): registered on import.
from rollouts import admin_freezes as _freezes_admin  # noqa: F401
from rollouts import admin_notifications as _notifications_admin  # noqa: F401
from rollouts import admin_policies as _policies_admin  # noqa: F401
from rollouts import models as m
from rollouts.admin_base import AppendOnlyAdmin
from rollouts.api.kinds import FLEET_KINDS, Kind, KindRegistry
from rollouts.mirror import admin as _mirror_admin  # noqa: F401
from rollouts.services.objects import object_delete, object_patch
from rollouts.views.accounts import AdminLoginForm, admin_login

_KIND_OF_MODEL = {kind.model: kind for kind in FLEET_KINDS}


def kind_of(obj) -> Kind:
    """The API kind of a stored object (HubResource rows by apiVersion/kind)."""
    if isinstance(obj, m.HubResource):
        api_version = f"{obj.api_group}/{obj.api_version_name}".lstrip("/")
        return KindRegistry().for_manifest(api_version, obj.kind)
    return _KIND_OF_MODEL[type(obj)]


class FleetObjectForm(forms.ModelForm):
    """Carries the resourceVersion the page was rendered with, so a save on a
    stale page is refused instead of silently undoing someone else's write."""

    loaded_resource_version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["loaded_resource_version"].initial = self.instance.resource_version

    def clean(self):
        cleaned = super().clean()
        loaded = cleaned.get("loaded_resource_version")
        current = (
            type(self.instance)
            .objects.filter(pk=self.instance.pk)
            .values_list("resource_version", flat=True)
            .first()
        )
        if self.instance.pk and loaded is not None and current != loaded:
            raise forms.ValidationError(
                "This object was changed by someone else since you opened this page "
                f"(resourceVersion {loaded} → {current}). Reload the page and make your change again."
            )
        return cleaned


class FleetObjectAdmin(admin.ModelAdmin):
    """Hub objects: metadata, spec and labels editable; status is the
    controllers' and stays read-only."""

    form = FleetObjectForm
    list_display = ("name", "namespace", "generation", "resource_version", "created")
    list_filter = ("namespace",)
    search_fields = ("name",)
    ordering = ("namespace", "name")
    readonly_fields = (
        "name",
        "namespace",
        "uid",
        "generation",
        "resource_version",
        "creation_timestamp",
        "status",
    )
    editable_body = ("spec",)

    @admin.display(description="created", ordering="creation_timestamp")
    def created(self, obj):
        return obj.creation_timestamp

    def get_readonly_fields(self, request, obj=None):
        # Everything that is not metadata or body is the system's to write:
        # owners, derived columns (`active`, `index`, `target_cluster`), status.
        editable = {"labels", "annotations", *self.editable_body}
        fields = [f.name for f in self.model._meta.concrete_fields if not f.primary_key]
        return [name for name in fields if name not in editable]

    def has_add_permission(self, request):
        return False

    def save_model(self, request, obj, form, change):
        object_patch(
            kind=kind_of(obj),
            name=obj.name,
            namespace=obj.namespace,
            patch_type="json",
            patch=self._patch_ops(obj, form.cleaned_data.get("loaded_resource_version")),
            subresource=None,
            actor=request.user.get_username(),
        )

    def _patch_ops(self, obj, loaded_resource_version) -> list[dict]:
        """JSON-patch ops that make the stored object say what the form says.

        `add` replaces a member that exists, so it needs no "was it there" check."""
        ops = [
            {"op": "add", "path": "/metadata/labels", "value": obj.labels or {}},
            {"op": "add", "path": "/metadata/annotations", "value": obj.annotations or {}},
            {"op": "add", "path": "/spec", "value": obj.spec or {}},
        ]
        if loaded_resource_version is not None:
            ops.append(
                {
                    "op": "add",
                    "path": "/metadata/resourceVersion",
                    "value": str(loaded_resource_version),
                }
            )
        return ops

    def delete_model(self, request, obj):
        object_delete(
            kind=kind_of(obj),
            name=obj.name,
            namespace=obj.namespace,
            actor=request.user.get_username(),
        )

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


class HubResourceAdmin(FleetObjectAdmin):
    """Core and custom resources: their body is `content` (a ConfigMap's data…)."""

    list_display = ("kind", "name", "namespace", "generation", "resource_version", "created")
    list_filter = ("kind", "namespace")
    ordering = ("api_group", "kind", "namespace", "name")
    editable_body = ("content",)

    def _patch_ops(self, obj, loaded_resource_version) -> list[dict]:
        ops = [
            {"op": "add", "path": "/metadata/labels", "value": obj.labels or {}},
            {"op": "add", "path": "/metadata/annotations", "value": obj.annotations or {}},
        ]
        stored = type(obj).objects.get(pk=obj.pk).content
        ops += [
            {"op": "remove", "path": f"/{_pointer(key)}"}
            for key in stored
            if key not in (obj.content or {})
        ]
        ops += [
            {"op": "add", "path": f"/{_pointer(key)}", "value": value}
            for key, value in (obj.content or {}).items()
        ]
        if loaded_resource_version is not None:
            ops.append(
                {
                    "op": "add",
                    "path": "/metadata/resourceVersion",
                    "value": str(loaded_resource_version),
                }
            )
        return ops


def _pointer(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


@admin.register(m.MemberObject)
class MemberObjectAdmin(admin.ModelAdmin):
    """What a simulated member holds. Editable on purpose: changing a row is
    how you simulate drift on a member."""

    list_display = (
        "name",
        "namespace",
        "kind",
        "cluster",
        "placement",
        "resource_snapshot",
        "applied_at",
    )
    list_filter = ("cluster", "kind")
    search_fields = ("name",)


@admin.register(m.Event)
class EventAdmin(AppendOnlyAdmin):
    """The audit log and run timeline: append-only, so read-only here (the
    model and, on PostgreSQL, a trigger refuse changes anyway)."""

    list_display = (
        "seq",
        "time",
        "actor",
        "action",
        "object_kind",
        "object_namespace",
        "object_name",
        "run",
        "reason",
    )
    list_filter = ("action", "object_kind")
    search_fields = ("object_name", "actor", "run")
    date_hierarchy = "time"


for _model in m.FLEET_MODELS:
    admin.site.register(_model, FleetObjectAdmin)
# The admin's login is under the same failed-login limit as the dashboard's,
# and has no password form while FLEET_LOCAL_LOGIN is false.
admin.site.login_form = AdminLoginForm
admin.site.login = admin_login(admin.site.login)
admin.site.register(m.HubResource, HubResourceAdmin)
