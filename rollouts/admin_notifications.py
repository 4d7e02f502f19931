"""The Django admin for notification subscriptions and their delivery log.

Team channels (no owner) are made here or with `fleet notifications`;
people make their own on their settings page. Every add, change and delete
goes through services.notifications, so it is an audit Event like the same
change made elsewhere. A webhook's secret is shown once, on the page after
the add (not in a flashed message, which would sit in the session). The
delivery log is read-only, with "Send again" and "Send a test message".
"""

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse

from rollouts import models as m
from rollouts import notifier
from rollouts.api.errors import ApiError
from rollouts.services.deliveries import delivery_resend, delivery_test
from rollouts.services.notifications import (
    subscription_check,
    subscription_create,
    subscription_delete,
    subscription_update,
    target_display,
)

Subscription = m.Subscription
_FIELDS = ("name", "channel", "target", "placement", "label_selector", "run_name", "events")


class SubscriptionForm(forms.ModelForm):
    events = forms.MultipleChoiceField(
        choices=[c for c in Subscription.EventKind.choices if c[0] != Subscription.EventKind.TEST],
        required=False, widget=forms.CheckboxSelectMultiple, help_text="None ticked: every event.")

    class Meta:
        model = Subscription
        fields = ("name", "owner", "channel", "target", "placement", "label_selector", "run_name", "events",
                  "enabled")
        help_texts = {"owner": "Empty: a team channel.", "label_selector": "Of the placement: env=prod,tier in (web)"}

    def clean(self):
        """The services' own checks, as the form's errors."""
        data = super().clean()
        fields = {key: data.get(key) or ("" if key != "events" else []) for key in _FIELDS}
        fields["name"] = fields["name"] or (self.instance.name if self.instance.pk else "")
        fields["channel"] = fields["channel"] or (self.instance.channel if self.instance.pk else "")
        fields["events_"] = fields.pop("events")
        try:
            subscription_check(**fields)
        except ApiError as exc:
            raise forms.ValidationError(str(exc)) from None
        return data


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    form = SubscriptionForm
    list_display = ("name", "owner", "channel", "shown_target", "events", "enabled", "created_by")
    list_filter = ("channel", "enabled")
    search_fields = ("name", "owner__username")
    actions = ["send_test"]

    @admin.display(description="target")
    def shown_target(self, obj):
        return target_display(obj.channel, obj.target)

    def get_readonly_fields(self, request, obj=None):
        return ("owner", "channel") if obj else ()

    def save_model(self, request, obj, form, change):
        """Through the services, so the change is audited (the form checked it)."""
        actor, data = request.user.get_username(), form.cleaned_data
        values = {key: data.get(key) or ("" if key != "events" else []) for key in _FIELDS}
        values["events_"] = values.pop("events")
        if change:
            # The form already set the new values on obj: the service compares with the row as stored.
            stored = Subscription.objects.get(pk=obj.pk)
            subscription_update(subscription=stored, actor=actor, via="admin", enabled=data.get("enabled", True),
                                **{k: v for k, v in values.items() if k not in ("name", "channel")})
        else:
            created, obj._new_secret = subscription_create(owner=data.get("owner"), actor=actor, via="admin",
                                                           **values)
            obj.pk, obj.secret_encrypted, obj.created_at = created.pk, created.secret_encrypted, created.created_at

    def response_add(self, request, obj, post_url_continue=None):
        return TemplateResponse(request, "admin/rollouts/subscription_created.html",
                                {**self.admin_site.each_context(request), "subscription": obj,
                                 "secret": getattr(obj, "_new_secret", ""), "title": f"Subscribed: {obj.name}"})

    def delete_model(self, request, obj):
        subscription_delete(subscription=obj, actor=request.user.get_username(), via="admin")

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)

    @admin.action(description="Send a test message")
    def send_test(self, request, queryset):
        for sub in queryset:
            delivery = delivery_test(subscription=sub, actor=request.user.get_username())
            ok = delivery.status == m.Delivery.Status.DELIVERED
            self.message_user(request, f"{sub.name}: {'delivered' if ok else delivery.last_error}",
                              messages.SUCCESS if ok else messages.ERROR)


@admin.register(m.Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ("created_at", "kind", "subscription", "status", "attempts", "last_error", "response_ms",
                    "next_attempt_at")
    list_filter = ("status", "kind")
    search_fields = ("key", "subscription__name")
    list_select_related = ("subscription",)
    readonly_fields = [f.name for f in m.Delivery._meta.fields]
    actions = ["send_again"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Send again")
    def send_again(self, request, queryset):
        ids = []
        for delivery in queryset.select_related("subscription"):
            delivery_resend(delivery=delivery, actor=request.user.get_username(), via="admin")
            ids.append(delivery.pk)
        notifier.send_soon(ids)
        self.message_user(request, f"{len(ids)} deliver{'y' if len(ids) == 1 else 'ies'} will be sent again now.")
