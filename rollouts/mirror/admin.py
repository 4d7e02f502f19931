"""Admin pages for hub connections and member credentials.

A kubeconfig is write-only: the form takes one (required when adding, blank
keeps the stored one) and never shows it, not even the text just submitted
when the form comes back with an error. It is checked by parsing only
(rollouts.kubeconfig): no client is built while validating. Saves and deletes go through the
services in rollouts.mirror.actions. Registered by `rollouts.admin`
importing this module.
"""

from django import forms
from django.contrib import admin

from rollouts.kubeconfig import KubeconfigRefused, kubeconfig_parse
from rollouts.models.connections import HubConnection, MemberCredential

# rollouts.mirror.actions loads the kubernetes client (~0.4 s): imported where
# used, so Django's start-up (every `fleet` command) does not pay for it.


class WriteOnlyTextarea(forms.Textarea):
    """A textarea that never renders a value: what was typed into it is not
    sent back to the browser, even when the form is shown again with errors."""

    def format_value(self, value):
        return None


class CredentialForm(forms.ModelForm):
    kubeconfig = forms.CharField(
        widget=WriteOnlyTextarea(attrs={"rows": 12, "autocomplete": "off", "spellcheck": "false"}),
        required=False, strip=False,
        help_text="Paste the kubeconfig. It is stored encrypted and never shown again; "
                  "leave blank to keep the stored one.")

    def clean(self):
        cleaned = super().clean()
        text = cleaned.get("kubeconfig") or ""
        if not text.strip():
            if not self.instance.pk:
                self.add_error("kubeconfig", "A kubeconfig is required.")
            return cleaned
        try:
            kubeconfig_parse(text, cleaned.get("context") or "")
        except KubeconfigRefused as exc:
            self.add_error("kubeconfig", f"{exc} (enter the kubeconfig again: it is never shown)")
        return cleaned


class CredentialAdmin(admin.ModelAdmin):
    form = CredentialForm
    list_display = ("name", "context", "created_at")
    search_fields = ("name",)

    def save_model(self, request, obj, form, change):
        from .actions import credential_save

        credential_save(obj, kubeconfig=form.cleaned_data.get("kubeconfig") or "", context=obj.context,
                        actor=request.user.get_username())


@admin.register(HubConnection)
class HubConnectionAdmin(CredentialAdmin):
    list_display = ("name", "context", "enabled", "last_sync", "failures", "last_error")
    fields = ("name", "context", "kubeconfig", "enabled", "last_sync", "last_error", "last_error_at",
              "failures", "backoff_until", "warnings")
    readonly_fields = ("last_sync", "last_error", "last_error_at", "failures", "backoff_until", "warnings")

    def delete_model(self, request, obj):
        from .actions import hub_connection_delete

        hub_connection_delete(connection=obj, actor=request.user.get_username())

    def delete_queryset(self, request, queryset):
        for connection in queryset:
            self.delete_model(request, connection)


@admin.register(MemberCredential)
class MemberCredentialAdmin(CredentialAdmin):
    fields = ("name", "context", "kubeconfig")

    def delete_model(self, request, obj):
        from .actions import member_credential_delete

        member_credential_delete(credential=obj, actor=request.user.get_username())

    def delete_queryset(self, request, queryset):
        for credential in queryset:
            self.delete_model(request, credential)
