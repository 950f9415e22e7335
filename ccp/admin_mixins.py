"""Admin building blocks: read-only admins for rows only the system writes (upgrades, steps, backups,
the audit log), and the context of intermediate pages."""

from django.contrib import admin
from django.contrib.admin import helpers


def page_context(modeladmin, request, **extra) -> dict:
    """Context of an admin page of `modeladmin`'s model (an action's intermediate page, a custom view).
    Pass `queryset=` when the page re-posts the selection (Django's delete_selected pattern)."""
    return {
        **modeladmin.admin_site.each_context(request),
        "opts": modeladmin.model._meta,
        "media": modeladmin.media,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        **extra,
    }


class ReadOnlyAdmin(admin.ModelAdmin):
    """Viewable, never added, edited or deleted by hand."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
