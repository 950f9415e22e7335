"""The fleet dashboard page of the admin (/admin/fleet/)."""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse

from instances.fleet import fleet_summary


def fleet_dashboard(request):
    if not request.user.has_perm("instances.view_instance"):
        raise PermissionDenied
    return TemplateResponse(
        request,
        "admin/fleet_dashboard.html",
        {
            **admin.site.each_context(request),
            "title": "Fleet dashboard",
            "summary": fleet_summary(),
        },
    )
