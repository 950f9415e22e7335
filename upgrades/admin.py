"""Admin for releases and upgrades. Upgrades are read-only: they change only through their runner."""

from django.contrib import admin, messages
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils import timezone

from ccp.admin_mixins import ReadOnlyAdmin
from ccp.badges import badge, first_sentence
from ccp.errors import CCPError
from instances.admin_progress import ProgressAdminMixin
from instances.operations.choices import OperationKind

from . import services
from .models import Release, Upgrade
from .rollouts import admin as rollouts_admin  # noqa: F401 - registers the Rollout admin


@admin.register(Release)
class ReleaseAdmin(admin.ModelAdmin):
    list_display = ("version", "image_tag", "template_set", "default", "used", "created_at")
    list_filter = ("template_set", "is_default")
    search_fields = ("version", "image_tag", "notes")
    readonly_fields = ("created_at",)

    @admin.display(description="Fleet default", ordering="is_default")
    def default(self, release: Release) -> str:
        # Not being the default is no error: words, not a red cross.
        return "the fleet default" if release.is_default else ""

    @admin.display(description="Used by upgrades")
    def used(self, release: Release) -> str:
        return "yes (locked)" if services.release_is_used(release) else "not yet"

    def get_readonly_fields(self, request, obj=None):
        # Upgrades record which release they ran: its content never changes afterwards (notes and the
        # fleet-default flag may).
        if obj is not None and services.release_is_used(obj):
            return (*self.readonly_fields, *services.RELEASE_CONTENT_FIELDS)
        return self.readonly_fields

    def change_view(self, request, object_id, form_url="", extra_context=None):
        release = self.get_object(request, object_id)
        if release is not None and services.release_is_used(release) and request.method == "GET":
            messages.info(
                request,
                f"Release {release.version} has been used by upgrades: its version, image tag, template set and "
                "registry cannot be changed. To ship something else, add a new release.",
            )
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(Upgrade)
class UpgradeAdmin(ProgressAdminMixin, ReadOnlyAdmin):
    progress_kind = OperationKind.UPGRADE
    list_display = (
        "id",
        "instance",
        "kind",
        "from_version",
        "to_version",
        "status_badge",
        "error_sentence",
        "requested_by",
        "created",
        "duration",
    )
    list_filter = ("status", "mode", "is_first_deploy")
    search_fields = ("instance__slug", "to_version", "from_version")
    list_select_related = ("instance", "requested_by")
    change_form_template = "admin/upgrades/upgrade/change_form.html"
    fields = (
        "instance",
        "kind",
        "mode",
        "is_first_deploy",
        "release",
        "from_version",
        "to_version",
        "status",
        "error",
        "requested_by",
        "approved_preview_hash",
        "cancel_requested",
        "created_at",
        "started_at",
        "finished_at",
        "task_id",
    )
    readonly_fields = fields

    @admin.display(description="What", ordering="mode")
    def kind(self, upgrade: Upgrade) -> str:
        return upgrade.kind_display

    @admin.display(description="Status", ordering="status")
    def status_badge(self, upgrade: Upgrade):
        return badge(upgrade.status, upgrade.get_status_display())

    @admin.display(description="What failed")
    def error_sentence(self, upgrade: Upgrade) -> str:
        return first_sentence(upgrade.error)

    @admin.display(description="Created", ordering="created_at")
    def created(self, upgrade: Upgrade) -> str:
        # Compact, so that the list fits a 1366 px screen; the detail page has the full timestamps.
        return timezone.localtime(upgrade.created_at).strftime("%Y-%m-%d %H:%M")

    @admin.display(description="Duration")
    def duration(self, upgrade: Upgrade) -> str:
        return f"{upgrade.duration_seconds:.1f} s" if upgrade.duration_seconds is not None else ""

    def get_urls(self):
        return [
            path("<int:pk>/cancel/", self.admin_site.admin_view(self.cancel_view), name="upgrades_upgrade_cancel"),
            *super().get_urls(),
        ]

    def cancel_view(self, request, pk: int):
        upgrade = get_object_or_404(Upgrade, pk=pk)
        change_url = reverse("admin:upgrades_upgrade_change", args=[pk])
        if request.method != "POST":
            return redirect(change_url)
        if not request.user.has_perm("upgrades.cancel_upgrade"):
            messages.error(request, "You do not have permission to cancel upgrades.")
            return redirect(change_url)
        try:
            services.upgrade_cancel(upgrade=upgrade, user=request.user)
            messages.success(request, f"Upgrade #{pk}: cancel requested; it stops at the next safe point.")
        except CCPError as exc:
            messages.error(request, exc.message)
        return redirect(change_url)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        upgrade = get_object_or_404(Upgrade, pk=object_id)
        extra_context = {
            **(extra_context or {}),
            "can_cancel": not upgrade.is_final and request.user.has_perm("upgrades.cancel_upgrade"),
            "upgrade": upgrade,
        }
        return super().change_view(request, object_id, form_url, extra_context)
