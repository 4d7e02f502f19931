"""The Django admin for freezes: declaring, editing and ending go through
rollouts.services.freezes, so they are audited and published exactly as from
the Freezes page or `fleet freeze`. Freezes are never deleted (they are the
history the audit log names); break-glass approvals and the mirrored runs a
freeze stopped are read-only."""

from django import forms
from django.contrib import admin, messages

from rollouts import clock
from rollouts import models as m
from rollouts.admin_base import AppendOnlyAdmin
from rollouts.api.errors import ApiError
from rollouts.services import freezes as freeze_services


class FreezeForm(forms.ModelForm):
    class Meta:
        model = m.Freeze
        fields = ("name", "reason", "starts_at", "ends_at", "windows", "time_zone", "selector")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["starts_at"].required = False
        self.fields["starts_at"].help_text = "Empty: now."
        if self.instance.pk:
            self.fields["name"].disabled = self.fields["starts_at"].disabled = True

    def clean(self):
        """The service's own checks, each error on its field."""
        data = super().clean()
        if self.errors:
            return data
        try:
            freeze_services.freeze_validate(
                name=data.get("name") or self.instance.name, reason=data.get("reason", ""),
                starts_at=data.get("starts_at"), ends_at=data.get("ends_at"), windows=data.get("windows", ""),
                time_zone=data.get("time_zone") or "UTC", selector=data.get("selector", ""), now=clock.now())
        except freeze_services.FreezeInvalid as exc:
            self.add_error(exc.field if exc.field in self.fields else None, str(exc).removeprefix(f"{exc.field}: "))
        return data


@admin.register(m.Freeze)
class FreezeAdmin(admin.ModelAdmin):
    form = FreezeForm
    list_display = ("name", "active", "declared_by", "starts_at", "ends_at", "windows", "time_zone", "selector",
                    "ended_at", "ended_by", "reason")
    list_filter = ("active",)
    search_fields = ("name", "reason", "declared_by")
    readonly_fields = ("declared_by", "created_at", "active", "ended_at", "ended_by")
    actions = ["end_freezes"]

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and (obj is None or obj.ended_at is None)

    def save_model(self, request, obj, form, change):
        """Through the service (audited, published); the admin then uses the saved row."""
        data, actor = form.cleaned_data, request.user.get_username()
        common = {"reason": data["reason"], "ends_at": data.get("ends_at"), "windows": data.get("windows", ""),
                  "time_zone": data.get("time_zone") or "UTC", "selector": data.get("selector", ""),
                  "client_address": request.META.get("REMOTE_ADDR", ""), "via": "admin"}
        if change:
            saved = freeze_services.freeze_update(freeze=obj, actor=actor, **common)
        else:
            saved = freeze_services.freeze_create(name=data["name"], actor=actor, starts_at=data.get("starts_at"),
                                                  **common)
        obj.pk = saved.pk
        obj.refresh_from_db()

    @admin.action(description="End the selected freezes now")
    def end_freezes(self, request, queryset):
        for freeze in queryset.filter(ended_at=None):
            try:
                freeze_services.freeze_end(name=freeze.name, actor=request.user.get_username(),
                                           client_address=request.META.get("REMOTE_ADDR", ""), via="admin")
            except ApiError as exc:
                self.message_user(request, str(exc), messages.ERROR)
                continue
            self.message_user(request, f"Freeze {freeze.name} ended: runs resume within one engine pass.")


@admin.register(m.BreakGlass)
class BreakGlassAdmin(AppendOnlyAdmin):
    list_display = ("requested_at", "request_name", "run_name", "freeze_name", "requested_by", "confirmed_by",
                    "confirmed_at", "reason")
    search_fields = ("request_name", "run_name", "requested_by", "confirmed_by")


@admin.register(m.FreezeStop)
class FreezeStopAdmin(AppendOnlyAdmin):
    list_display = ("freeze", "run_kind", "run_namespace", "run_name", "stopped_at")
