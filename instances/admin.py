"""Admin for nodes and instances. Secrets appear as names with "set", never as values."""

from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.utils.html import format_html_join

from . import services
from .forms import InstanceAdminForm, NodeAdminForm
from .models import Instance, Node

NODE_SYSTEM_FIELDS = (
    "host_key_type", "host_key_fingerprint", "host_key_pinned_at", "docker_version", "compose_version",
    "disk_free_bytes", "checked_at", "check_ok", "check_error", "has_private_key",
)


@admin.register(Node)
class NodeAdmin(admin.ModelAdmin):
    form = NodeAdminForm
    list_display = ("name", "address", "ssh_port", "driver", "host_key_fingerprint", "docker_version",
                    "compose_version", "check_ok", "checked_at")
    list_filter = ("driver", "registry_access", "check_ok")
    search_fields = ("name", "address")
    readonly_fields = NODE_SYSTEM_FIELDS
    fieldsets = (
        (None, {"fields": ("name", "address", "ssh_port", "ssh_user", "driver", "instance_root",
                           "registry_access")}),
        ("Credentials", {"fields": ("private_key", "has_private_key", "ssh_key_path")}),
        ("Host key (pinned on first contact)", {"fields": ("host_key_type", "host_key_fingerprint",
                                                           "host_key_pinned_at")}),
        ("Last check", {"fields": ("check_ok", "checked_at", "check_error", "docker_version", "compose_version",
                                   "disk_free_bytes")}),
    )

    @admin.display(boolean=True, description="Private key stored")
    def has_private_key(self, obj: Node) -> bool:
        return obj.has_private_key

    def save_model(self, request, obj, form, change) -> None:
        key = form.cleaned_data.get("private_key") or None
        if key is not None:
            obj.set_private_key(key)
        obj.save()


@admin.register(Instance)
class InstanceAdmin(admin.ModelAdmin):
    form = InstanceAdminForm
    list_display = ("slug", "name", "node", "status", "effective_tag", "observed_version", "health",
                    "is_registered")
    list_filter = ("status", "health", "is_registered", "node")
    search_fields = ("slug", "name", "domain")
    list_select_related = ("node",)
    readonly_fields = ("secrets_set", "observed_version", "health", "health_checked_at", "attention",
                       "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "slug", "node", "status")}),
        ("Deployment", {"fields": ("install_dir", "compose_project", "image_tag", "is_registered", "domain",
                                   "ports", "profiles", "health_urls", "protected_paths", "upgrade_script",
                                   "backup_enabled")}),
        ("Secrets", {"fields": ("secrets_set", "secret_updates")}),
        ("Observed", {"fields": ("observed_version", "health", "health_checked_at", "attention",
                                 "created_at", "updated_at")}),
    )

    @admin.display(description="Image tag")
    def effective_tag(self, obj: Instance) -> str:
        return obj.image_tag or "(fleet default)"

    @admin.display(description="Secrets")
    def secrets_set(self, obj: Instance):
        names = obj.secret_names if obj.pk else []
        if not names:
            return "none"
        return format_html_join(", ", "{} (set)", ((name,) for name in names))

    def save_model(self, request, obj, form, change) -> None:
        updates = form.cleaned_data.get("secret_updates") or {}
        if updates:
            services.instance_update_secrets(instance=obj, values=updates)
        if not obj.compose_project:
            obj.compose_project = obj.slug
        if not change:
            services.instance_fill_secrets(instance=obj)
        obj.save()


@admin.register(LogEntry)
class AuditLogAdmin(admin.ModelAdmin):
    """Who changed what, in the admin and through the API."""

    list_display = ("action_time", "user", "content_type", "object_repr", "action_flag", "change_message")
    list_filter = ("action_flag", "content_type")
    search_fields = ("object_repr", "change_message", "user__username")
    list_select_related = ("user", "content_type")
    date_hierarchy = "action_time"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
