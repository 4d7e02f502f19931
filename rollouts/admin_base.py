"""What the admin modules share."""

from django.contrib import admin


class AppendOnlyAdmin(admin.ModelAdmin):
    """Rows nobody may add, change or delete here: every field read-only."""

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
