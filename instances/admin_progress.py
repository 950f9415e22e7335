"""The progress block of an operation's admin page (upgrade, deploy, backup, restore): its steps with
their live output, rendered once by the server and then kept current by a few lines of JavaScript that
poll the progress endpoint (instances.api.progress_views). No page reload, nothing to build."""

from django.contrib import admin
from django.shortcuts import get_object_or_404
from django.urls import reverse

from .operations.progress import operation_progress


class ProgressAdminMixin(admin.ModelAdmin):
    """Adds `progress` and `progress_url` to the change page's context; the change-form template
    includes admin/operations/progress.html."""

    progress_kind = ""

    def change_view(self, request, object_id, form_url="", extra_context=None):
        row = get_object_or_404(self.model, pk=object_id)
        extra_context = {
            **(extra_context or {}),
            "progress": operation_progress(kind=self.progress_kind, row=row),
            "progress_url": reverse(f"{self.progress_kind}-progress", args=[row.pk]),
        }
        return super().change_view(request, object_id, form_url, extra_context)
