"""Admin for nodes and instances. Secrets appear as names with "set", never as values."""

from django.contrib import admin, messages
from django.contrib.admin.models import LogEntry
from django.db import transaction
from django.template.response import TemplateResponse
from django.utils.html import format_html_join

from ccp.admin_mixins import ReadOnlyAdmin, page_context
from ccp.badges import badge
from ccp.errors import CCPError
from upgrades.admin_actions import quick_upgrade, roll_out, upgrade_to_release, upgrade_urls
from upgrades.selectors import annotate_last_upgrade, last_upgrade_summary

from . import services
from .admin_attention import NeedsAttentionFilter, acknowledge_attention, attention_column
from .admin_backups import back_up_now, last_backup  # also registers BackupAdmin and RestoreAdmin
from .admin_pages import instance_page_context, instance_page_urls, node_page_context, node_page_urls
from .admin_preview import preview_release, preview_urls
from .backups.selectors import annotate_last_backup
from .drift.admin import DriftFilter, drift_column  # also registers DriftReportAdmin
from .drift.selectors import annotate_drift
from .forms import InstanceAdminForm, NodeAdminForm, template_port_fields
from .models import Instance, Node
from .node_checks import node_presented_fingerprint, node_repin_host_key
from .node_keys import key_pair_generate
from .notifications import admin as notifications_admin  # noqa: F401 - registers the notification admins
from .preview import release_or_default
from .privileged import INSTANCE_PRIVILEGED_FIELDS, NODE_PANEL_HOST_FIELDS, NODE_WHERE_FIELDS, RELOCATE_PERMISSION
from .selectors import with_open_attention
from .tasks import instance_check_health_task, node_check_task

NODE_SYSTEM_FIELDS = (
    "host_key_type",
    "host_key_fingerprint",
    "host_key_pinned_at",
    "docker_version",
    "compose_version",
    "disk_free_bytes",
    "checked_at",
    "check_ok",
    "check_error",
    "has_private_key",
)


@admin.register(Node)
class NodeAdmin(admin.ModelAdmin):
    form = NodeAdminForm
    list_display = (
        "name",
        "address",
        "ssh_port",
        "driver",
        "docker_version",
        "compose_version",
        "last_check",
    )
    list_filter = ("driver", "registry_access", "check_ok")
    search_fields = ("name", "address")
    readonly_fields = NODE_SYSTEM_FIELDS
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "name",
                    "address",
                    "ssh_port",
                    "ssh_user",
                    "driver",
                    "instance_root",
                    "registry_access",
                    "image_source",
                )
            },
        ),
        ("Credentials", {"fields": ("private_key", "generate_key", "has_private_key", "ssh_key_path")}),
        (
            "Host key (pinned on first contact)",
            {"fields": ("host_key_type", "host_key_fingerprint", "host_key_pinned_at")},
        ),
        (
            "Last check",
            {
                "fields": (
                    "check_ok",
                    "checked_at",
                    "check_error",
                    "docker_version",
                    "compose_version",
                    "disk_free_bytes",
                )
            },
        ),
    )

    actions = ["check_nodes", "repin_host_keys"]

    @admin.display(description="Last check", ordering="checked_at")
    def last_check(self, node: Node):
        if node.check_ok is None:
            return badge("unknown", "never checked")
        return badge("ok", "ok") if node.check_ok else badge("failed", "failed")

    def get_urls(self):
        return node_page_urls(self) + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        node = self.get_object(request, object_id)
        extra = node_page_context(node, request) if node is not None else {}
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **extra})

    def has_operate_permission(self, request) -> bool:
        return request.user.has_perm("instances.operate_node")

    @admin.action(
        description="Check node (connect, pin host key on first contact, record versions)", permissions=["operate"]
    )
    def check_nodes(self, request, queryset) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        transaction.on_commit(lambda: [node_check_task.delay(pk) for pk in ids])
        self.message_user(request, f"Check queued for {len(ids)} node(s); the results appear on each node.")

    @admin.action(
        description="Re-pin host key… (trust the key the node presents now, after confirming it)",
        permissions=["operate"],
    )
    def repin_host_keys(self, request, queryset):
        """Django's delete_selected pattern: a page showing each node's presented fingerprint with a field for
        the one staff checked out of band; the second phase re-pins the nodes whose entry matches."""
        if request.POST.get("post") == "yes":
            for node in queryset:
                expected = request.POST.get(f"fingerprint_{node.pk}", "").strip()
                if not expected:
                    self.message_user(
                        request, f"{node}: no fingerprint entered; its pinned key was kept.", messages.WARNING
                    )
                    continue
                try:
                    node = node_repin_host_key(node=node, user=request.user, expected_fingerprint=expected)
                    self.message_user(request, f"{node}: host key pinned as {node.host_key_fingerprint}.")
                except CCPError as exc:
                    self.message_user(request, f"{node}: {exc.message}", messages.ERROR)
            return None
        rows = []
        for node in queryset:
            try:
                rows.append({"node": node, "presented": node_presented_fingerprint(node=node)[2]})
            except CCPError as exc:
                rows.append({"node": node, "error": exc.message})
        context = page_context(self, request, title="Re-pin host keys?", rows=rows, queryset=queryset)
        return TemplateResponse(request, "admin/instances/node/repin_confirmation.html", context)

    @admin.display(boolean=True, description="Private key stored")
    def has_private_key(self, obj: Node) -> bool:
        return obj.has_private_key

    def get_readonly_fields(self, request, obj=None):
        # The driver and the key path are panel-host settings (README "Security model"): superusers only.
        # Where an existing node points (address, port, user, image source) needs relocate_instance.
        if request.user.is_superuser:
            return self.readonly_fields
        where = NODE_WHERE_FIELDS if obj is not None and not request.user.has_perm(RELOCATE_PERMISSION) else ()
        return (*self.readonly_fields, *NODE_PANEL_HOST_FIELDS, *where)

    def save_model(self, request, obj, form, change) -> None:
        # The admin writes its own log entry; the service checks, encrypts, saves and audits panel-host changes.
        private_key = form.cleaned_data.get("private_key") or None
        if form.cleaned_data.get("generate_key"):
            private_key = key_pair_generate()
        services.node_save(node=obj, user=request.user, private_key=private_key, log_change=False)


@admin.register(Instance)
class InstanceAdmin(admin.ModelAdmin):
    form = InstanceAdminForm
    list_display = (
        "slug",
        "name",
        "node",
        "status_badge",
        "version",
        "health_badge",
        "last_upgrade",
        last_backup,
        attention_column,
        drift_column,
    )
    list_filter = ("status", "health", NeedsAttentionFilter, DriftFilter, "is_registered", "node")
    search_fields = ("slug", "name", "domain")
    list_select_related = ("node",)
    # Rendering a row costs ~1 ms (12 columns); 50 a page, as in the API, keeps the page quick.
    list_per_page = 50
    actions = [
        quick_upgrade,
        upgrade_to_release,
        roll_out,
        preview_release,
        back_up_now,
        "check_health",
        "generate_missing_secrets",
        acknowledge_attention,
    ]

    @admin.action(
        description='Generate missing secrets (those a preview shows as "will be generated")', permissions=["operate"]
    )
    def generate_missing_secrets(self, request, queryset) -> None:
        """For the fleet default release's template set; names only in the message and the audit log."""
        try:
            release = release_or_default(None)
        except CCPError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        for instance in queryset.filter(is_registered=False):
            names = services.instance_generate_missing_secrets(
                instance=instance, release=release, user=request.user, reason="operator action in the admin"
            )
            self.message_user(
                request,
                f"Generated {', '.join(names)} for {instance}."
                if names
                else f"Nothing generated for {instance}: it has every secret release {release} needs.",
            )
        if queryset.filter(is_registered=True).exists():
            self.message_user(
                request, "Registered instances keep their own .env: no secrets generated for them.", messages.WARNING
            )

    @admin.action(description="Check health (probe health URLs, read running version)", permissions=["operate"])
    def check_health(self, request, queryset) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        transaction.on_commit(lambda: [instance_check_health_task.delay(pk) for pk in ids])
        self.message_user(request, f"Health check queued for {len(ids)} instance(s); results appear in the list.")

    def get_urls(self):
        return instance_page_urls(self) + preview_urls(self) + upgrade_urls(self) + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        instance = self.get_object(request, object_id)
        extra = instance_page_context(instance, request) if instance is not None else {}
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **extra})

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj: Instance):
        return badge(obj.status, obj.get_status_display())

    @admin.display(description="Health", ordering="health")
    def health_badge(self, obj: Instance):
        return badge(obj.health, obj.get_health_display())

    @admin.display(description="Version", ordering="observed_version")
    def version(self, obj: Instance) -> str:
        running = obj.observed_version or "unknown"
        return running if obj.image_tag in ("", running) else f"{running} (tag {obj.image_tag})"

    def get_queryset(self, request):
        return annotate_drift(
            with_open_attention(annotate_last_backup(annotate_last_upgrade(super().get_queryset(request))))
        )

    def has_operate_permission(self, request) -> bool:
        return request.user.has_perm("instances.operate_instance")

    def has_rollout_permission(self, request) -> bool:
        return request.user.has_perm("upgrades.operate_rollout")

    @admin.display(description="Last upgrade", ordering="last_upgrade_at")
    def last_upgrade(self, obj: Instance) -> str:
        return last_upgrade_summary(obj)

    readonly_fields = (
        "secrets_set",
        "observed_version",
        "health",
        "health_checked_at",
        "attention",
        "created_at",
        "updated_at",
    )
    fieldsets = (
        (None, {"fields": ("name", "slug", "node", "status")}),
        (
            "Deployment",
            {
                "fields": (
                    "install_dir",
                    "compose_project",
                    "image_tag",
                    "is_registered",
                    "domain",
                    "ports",
                    "profiles",
                    "health_urls",
                    "protected_paths",
                    "upgrade_script",
                    "backup_enabled",
                )
            },
        ),
        ("Secrets", {"fields": ("secrets_set", "secret_updates")}),
        (
            "Observed",
            {"fields": ("observed_version", "health", "health_checked_at", "attention", "created_at", "updated_at")},
        ),
    )

    @admin.display(description="Secrets")
    def secrets_set(self, obj: Instance):
        names = obj.secret_names if obj.pk else []
        if not names:
            return "none"
        return format_html_join(", ", "{} (set)", ((name,) for name in names))

    def has_delete_permission(self, request, obj=None) -> bool:
        # Never under a running operation (the API answers 409 the same way); history is protected by the
        # database, which the admin's "Cannot delete" page reports.
        if obj is not None and getattr(obj, "lock", None) is not None:
            return False
        return super().has_delete_permission(request, obj)

    def get_form(self, request, obj=None, change=False, **kwargs):
        # The ports the template set needs, one field each (port_<name>), in place of the JSON mapping.
        kwargs.setdefault("form", type(self.form.__name__, (self.form,), template_port_fields()))
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"user": request.user})

    def get_fieldsets(self, request, obj=None):
        ports = tuple(template_port_fields()) or ("ports",)
        return [
            (
                title,
                {
                    **options,
                    "fields": tuple(f for name in options["fields"] for f in (ports if name == "ports" else (name,))),
                },
            )
            for title, options in super().get_fieldsets(request, obj)
        ]

    def get_readonly_fields(self, request, obj=None):
        # Where an existing instance lives and what its full upgrade runs are privileged (README "Security model").
        if obj is None or request.user.has_perm(RELOCATE_PERMISSION):
            return self.readonly_fields
        return (*self.readonly_fields, *INSTANCE_PRIVILEGED_FIELDS)

    def save_model(self, request, obj, form, change) -> None:
        # The admin writes its own log entry; the service sets secrets, generates a new one's, saves, and
        # audits privileged changes old → new.
        services.instance_save(
            instance=obj,
            user=request.user,
            log_change=False,
            secret_values=form.cleaned_data.get("secret_updates") or None,
        )


@admin.register(LogEntry)
class AuditLogAdmin(ReadOnlyAdmin):
    """Who changed what, in the admin and through the API."""

    list_display = ("action_time", "user", "content_type", "object_repr", "action_flag", "readable_change")
    list_filter = ("action_flag", "content_type")
    search_fields = ("object_repr", "change_message", "user__username")
    list_select_related = ("user", "content_type")
    date_hierarchy = "action_time"
    fields = ("action_time", "user", "content_type", "object_repr", "action_flag", "readable_change")
    readonly_fields = fields

    @admin.display(description="Change")
    def readable_change(self, entry: LogEntry) -> str:
        # The admin stores its messages as JSON; this is the sentence they stand for.
        return entry.get_change_message()
