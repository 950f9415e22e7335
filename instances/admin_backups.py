"""Admin for backups: the Backup list (verify, restore…, MANIFEST.txt download), restores, and the
"Back up now" action and "Last backup" column of the Instance changelist (wired in instances/admin.py)."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.timesince import timesince

from ccp.admin_mixins import ReadOnlyAdmin, ReadOnlyInline, page_context
from ccp.badges import badge
from ccp.errors import CCPError

from .admin_progress import ProgressAdminMixin
from .backups import layout
from .backups.restore import backup_restore_request, restore_cancel, restore_targets
from .backups.selectors import last_backup_summary
from .backups.services import backup_cancel, backup_request, backup_verify
from .backups.storage import backup_storage
from .choices import BackupLabel, BackupStatus
from .models import Backup, Restore
from .operations.choices import OperationKind

# --- on the Instance changelist ------------------------------------------------------------------


@admin.action(description="Back up now", permissions=["operate"])
def back_up_now(modeladmin, request, queryset):
    queued, refused = [], []
    for instance in queryset:
        try:
            backup = backup_request(instance=instance, label=BackupLabel.MANUAL, user=request.user)
            queued.append((reverse("admin:instances_backup_change", args=[backup.pk]), f"{instance} #{backup.pk}"))
        except CCPError as error:
            refused.append(f"{instance}: {error.message}")
    if queued:
        links = format_html_join(", ", '<a href="{}">{}</a>', queued)
        modeladmin.message_user(request, format_html("Queued {} backup(s): {}", len(queued), links), messages.SUCCESS)
    for line in refused:
        modeladmin.message_user(request, line, messages.ERROR)


@admin.display(description="Last backup", ordering="last_backup_at")
def last_backup(instance) -> str:
    """Needs the queryset annotated by instances.backups.selectors.annotate_last_backup."""
    return last_backup_summary(instance)


# --- Backup --------------------------------------------------------------------------------------


class RestoreInline(ReadOnlyInline):
    model = Restore
    fields = ("id", "status", "requested_by", "created_at", "finished_at", "error", "log_block")
    readonly_fields = fields
    ordering = ("-created_at",)

    @admin.display(description="Log")
    def log_block(self, restore: Restore):
        return format_html('<pre style="white-space:pre-wrap">{}</pre>', restore.log) if restore.log else ""


@admin.register(Backup)
class BackupAdmin(ProgressAdminMixin, ReadOnlyAdmin):
    """Read-only: backups change only through their runner, verify and retention."""

    progress_kind = OperationKind.BACKUP
    change_form_template = "admin/operations/change_form.html"

    list_display = ("__str__", "instance", "node", "label", "status_badge", "size", "age", "verified", "manifest_link")
    list_filter = ("label", "status", "verify_ok", "instance__node")
    search_fields = ("instance__slug", "location")
    list_select_related = ("instance__node",)
    date_hierarchy = "created_at"
    actions = ["verify_selected", "restore_selected", "cancel_selected"]
    inlines = [RestoreInline]
    fields = (
        "instance",
        "label",
        "status",
        "location",
        "size",
        "manifest_link",
        "requested_by",
        "task_id",
        "error",
        "created_at",
        "started_at",
        "finished_at",
        "verified",
        "verified_at",
        "manifest",
    )
    readonly_fields = fields

    # Deleting a row by hand would orphan its folder: retention removes both (ReadOnlyAdmin).

    def has_operate_permission(self, request) -> bool:
        return request.user.has_perm("instances.operate_instance")

    def has_restore_permission(self, request) -> bool:
        return request.user.has_perm("instances.restore_backup")

    @admin.display(description="Node", ordering="instance__node__name")
    def node(self, backup: Backup) -> str:
        return backup.instance.node.name

    @admin.display(description="Status", ordering="status")
    def status_badge(self, backup: Backup):
        return badge(backup.status, backup.get_status_display())

    @admin.display(description="Size", ordering="size_bytes")
    def size(self, backup: Backup) -> str:
        return filesizeformat(backup.size_bytes) if backup.size_bytes is not None else "—"

    @admin.display(description="Age", ordering="created_at")
    def age(self, backup: Backup) -> str:
        return f"{timesince(backup.created_at)} ago"

    @admin.display(description="Verified")
    def verified(self, backup: Backup) -> str:
        if backup.verify_ok is None:
            return "not yet"
        when = f"{timesince(backup.verified_at)} ago" if backup.verified_at else ""
        return f"ok ({when})" if backup.verify_ok else f"FAILED ({when}): {backup.verify_error}"

    @admin.display(description="Manifest")
    def manifest_link(self, backup: Backup):
        if backup.status != BackupStatus.SUCCEEDED:
            return "—"
        return format_html(
            '<a href="{}">MANIFEST.txt</a>', reverse("admin:instances_backup_manifest", args=[backup.pk])
        )

    def get_urls(self):
        view = self.admin_site.admin_view(self.manifest_view)
        return [path("<int:backup_id>/manifest/", view, name="instances_backup_manifest"), *super().get_urls()]

    def manifest_view(self, request, backup_id: int):
        backup = get_object_or_404(Backup.objects.select_related("instance"), pk=backup_id)
        if not self.has_view_permission(request, backup):
            raise PermissionDenied
        try:
            handle = backup_storage().open(backup.location, layout.MANIFEST)
        except CCPError:
            raise Http404(f"Backup #{backup.pk} has no MANIFEST.txt in the backup storage.") from None
        filename = f"{backup.instance.slug}-{backup.location.rsplit('/', 1)[-1]}-MANIFEST.txt"
        return FileResponse(handle, as_attachment=True, filename=filename, content_type="text/plain")

    @admin.action(description="Verify selected backups (re-hash against MANIFEST.txt)", permissions=["operate"])
    def verify_selected(self, request, queryset):
        for backup in queryset.select_related("instance"):
            try:
                backup = backup_verify(backup=backup, user=request.user)
            except CCPError as error:
                self.message_user(request, f"#{backup.pk}: {error.message}", messages.WARNING)
                continue
            if backup.verify_ok:
                self.message_user(
                    request, f"#{backup.pk} ({backup.instance}): every file matches MANIFEST.txt.", messages.SUCCESS
                )
            else:
                self.message_user(
                    request,
                    f"#{backup.pk} ({backup.instance}) failed verification: {backup.verify_error}",
                    messages.ERROR,
                )

    @admin.action(description="Cancel selected pending backups", permissions=["operate"])
    def cancel_selected(self, request, queryset):
        for backup in queryset.select_related("instance"):
            try:
                backup_cancel(backup=backup, user=request.user)
            except CCPError as error:
                self.message_user(request, error.message, messages.WARNING)
                continue
            self.message_user(request, f"Backup #{backup.pk} of {backup.instance} cancelled.", messages.SUCCESS)

    @admin.action(description="Restore selected backup…", permissions=["restore"])
    def restore_selected(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one backup to restore.", messages.WARNING)
            return None
        backup = queryset.select_related("instance__node").get()
        if request.POST.get("post") == "yes":
            try:
                restore = backup_restore_request(backup=backup, user=request.user)
            except CCPError as error:
                self.message_user(request, error.message, messages.ERROR)
                return None
            url = reverse("admin:instances_backup_change", args=[backup.pk])
            self.message_user(
                request,
                format_html(
                    'Restore #{} of <a href="{}">backup #{}</a> onto {} queued.',
                    restore.pk,
                    url,
                    backup.pk,
                    backup.instance,
                ),
                messages.SUCCESS,
            )
            return None
        context = page_context(
            self,
            request,
            title="Restore this backup?",
            backup=backup,
            targets=restore_targets(backup),
            queryset=queryset,
        )
        return TemplateResponse(request, "admin/instances/backup/restore_confirmation.html", context)


@admin.register(Restore)
class RestoreAdmin(ProgressAdminMixin, ReadOnlyAdmin):
    progress_kind = OperationKind.RESTORE
    change_form_template = "admin/operations/change_form.html"
    list_display = ("__str__", "instance", "status_badge", "requested_by", "created_at", "finished_at")
    list_select_related = ("instance", "backup__instance", "requested_by")

    @admin.display(description="Status", ordering="status")
    def status_badge(self, restore: Restore):
        return badge(restore.status, restore.get_status_display())

    list_filter = ("status",)
    search_fields = ("instance__slug", "source")
    actions = ["cancel_selected"]

    def has_restore_permission(self, request) -> bool:
        return request.user.has_perm("instances.restore_backup")

    @admin.action(description="Cancel selected pending restores", permissions=["restore"])
    def cancel_selected(self, request, queryset):
        for restore in queryset.select_related("instance"):
            try:
                restore_cancel(restore=restore, user=request.user)
            except CCPError as error:
                self.message_user(request, error.message, messages.WARNING)
                continue
            self.message_user(request, f"Restore #{restore.pk} of {restore.instance} cancelled.", messages.SUCCESS)

    fields = (
        "instance",
        "backup",
        "source",
        "status",
        "requested_by",
        "task_id",
        "error",
        "log",
        "created_at",
        "started_at",
        "finished_at",
    )
    readonly_fields = fields
