"""Admin for releases and upgrades. Upgrades are read-only: they change only through their runner."""

from django.contrib import admin, messages
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils.html import format_html

from ccp.admin_mixins import ReadOnlyAdmin, ReadOnlyInline
from ccp.errors import CCPError

from . import services
from .models import Release, Upgrade, UpgradeStep
from .rollouts import admin as rollouts_admin  # noqa: F401 - registers the Rollout admin


@admin.register(Release)
class ReleaseAdmin(admin.ModelAdmin):
    list_display = ("version", "image_tag", "template_set", "is_default", "created_at")
    list_filter = ("template_set", "is_default")
    search_fields = ("version", "image_tag", "notes")
    readonly_fields = ("created_at",)


class UpgradeStepInline(ReadOnlyInline):
    model = UpgradeStep
    fields = ("position", "name", "is_rollback", "status", "started_at", "duration", "output_block")
    readonly_fields = fields
    ordering = ("position",)

    @admin.display(description="Duration")
    def duration(self, step: UpgradeStep) -> str:
        return f"{step.duration_seconds:.1f} s" if step.duration_seconds is not None else "…"

    @admin.display(description="Output")
    def output_block(self, step: UpgradeStep):
        if not step.output:
            return ""
        return format_html('<pre style="max-height:20em;overflow:auto;white-space:pre-wrap">{}</pre>', step.output)


@admin.register(Upgrade)
class UpgradeAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "instance",
        "kind",
        "from_version",
        "to_version",
        "status",
        "requested_by",
        "created_at",
        "duration",
    )
    list_filter = ("status", "mode", "is_first_deploy")
    search_fields = ("instance__slug", "to_version", "from_version")
    list_select_related = ("instance", "requested_by")
    inlines = [UpgradeStepInline]
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
            "refresh_seconds": 0 if upgrade.is_final else 3,
            "can_cancel": not upgrade.is_final and request.user.has_perm("upgrades.cancel_upgrade"),
            "upgrade": upgrade,
        }
        return super().change_view(request, object_id, form_url, extra_context)
