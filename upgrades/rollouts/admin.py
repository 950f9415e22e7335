"""The Rollout admin: the list, and a page per rollout with its waves, each instance's status and current
step, refreshing while it runs, with Halt, Resume and Cancel (POST views calling the services)."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse

from ccp.admin_mixins import ReadOnlyAdmin
from ccp.errors import CCPError

from . import services
from .models import Rollout
from .selectors import item_current_step, rollout_waves

OPERATE = "upgrades.operate_rollout"


@admin.register(Rollout)
class RolloutAdmin(ReadOnlyAdmin):
    list_display = ("id", "target", "mode", "status", "current_wave", "created_by", "created_at", "finished_at")
    list_filter = ("status", "mode")
    list_select_related = ("release", "created_by")
    change_form_template = "admin/upgrades/rollout/change_form.html"
    fields = (
        "mode",
        "release",
        "image_tag",
        "canary_size",
        "waves",
        "parallelism",
        "per_node_limit",
        "failure_budget",
        "start_at",
        "status",
        "reason",
        "created_by",
        "created_at",
        "started_at",
        "finished_at",
    )
    readonly_fields = fields

    def get_urls(self):
        views = [
            path(
                f"<int:pk>/{name}/", self.admin_site.admin_view(self._operation(name)), name=f"upgrades_rollout_{name}"
            )
            for name in ("halt", "resume", "cancel")
        ]
        return views + super().get_urls()

    def _operation(self, name: str):
        service = {"halt": services.rollout_halt, "resume": services.rollout_resume, "cancel": services.rollout_cancel}[
            name
        ]
        done = {
            "halt": "halted: no further upgrade starts; running ones finish",
            "resume": "resumed with the instances not done",
            "cancel": "cancelled: no further upgrade starts; running ones finish",
        }[name]

        def view(request, pk: int):
            if not request.user.has_perm(OPERATE):
                raise PermissionDenied
            rollout = get_object_or_404(Rollout, pk=pk)
            change_url = reverse("admin:upgrades_rollout_change", args=[pk])
            if request.method != "POST":
                return redirect(change_url)
            try:
                service(rollout=rollout, user=request.user)
                messages.success(request, f"Rollout #{pk} {done}.")
            except CCPError as exc:
                messages.error(request, exc.message)
            return redirect(change_url)

        return view

    def change_view(self, request, object_id, form_url="", extra_context=None):
        rollout = get_object_or_404(Rollout.objects.select_related("release"), pk=object_id)
        running = rollout.items.filter(status="running").exists()
        waves = [
            {"label": wave.label, "rows": [{"item": item, "step": item_current_step(item)} for item in wave.items]}
            for wave in rollout_waves(rollout)
        ]
        extra_context = {
            **(extra_context or {}),
            "rollout": rollout,
            "waves": waves,
            "refresh_seconds": 3 if rollout.is_active or running else 0,
            "can_operate": request.user.has_perm(OPERATE),
        }
        return super().change_view(request, object_id, form_url, extra_context)
