"""Admin pages that preview a release upgrade: one instance (its own URL) or a selection (an action).

Read-only: nothing is written to a node. Each instance's preview is a `PreviewBlock`, rendered by the
include `admin/instances/includes/preview_block.html` (with `preview_styles.html` once per page), so
other admin pages (the "Upgrade to release…" confirmation) can show exactly the same thing.
"""

from dataclasses import dataclass

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path

from ccp.admin_mixins import page_context
from ccp.errors import CCPError

from .preview import release_or_default
from .redaction import redact, secret_values
from .selectors import PreviewReport, instance_preview_report

PREVIEW_TEMPLATE = "admin/instances/instance/preview.html"


@dataclass(frozen=True)
class PreviewBlock:
    """One instance's preview for a page: the report, or why there is none (already redacted)."""

    instance: object
    report: PreviewReport | None = None
    error: str = ""


def preview_block(*, instance, release) -> PreviewBlock:
    try:
        return PreviewBlock(instance, report=instance_preview_report(instance=instance, release=release))
    except CCPError as exc:
        return PreviewBlock(instance, error=redact(exc.message, secret_values(instance)))


class ReleasePickForm(forms.Form):
    release = forms.ModelChoiceField(queryset=None, to_field_name="version", empty_label=None,
                                     label="Release", help_text="Render with this release and compare.")

    def __init__(self, *args, **kwargs):
        from upgrades.models import Release

        super().__init__(*args, **kwargs)
        self.fields["release"].queryset = Release.objects.order_by("-created_at")


def _picked_release(data) -> tuple[ReleasePickForm, object]:
    """The release chosen in `data` (GET or POST), else (none chosen) the fleet default. An unknown
    release is an error, like the API's 400: never silently the default. CCPError when there is none."""
    form = ReleasePickForm(data if data.get("release") else None)
    if form.is_bound and form.is_valid():
        return form, form.cleaned_data["release"]
    if form.is_bound:
        release_or_default(str(data.get("release")))  # raises "There is no release '…'."
    release = release_or_default(None)
    return (form if form.is_bound else ReleasePickForm(initial={"release": release.version})), release


def preview_view(modeladmin, request, object_id: str):
    """GET <instance>/preview/?release=V: the preview of one instance."""
    instance = modeladmin.get_object(request, unquote(object_id))
    if instance is None:
        raise Http404(f"There is no instance with id {object_id!r}.")
    if not modeladmin.has_view_permission(request, instance):
        raise PermissionDenied
    try:
        form, release = _picked_release(request.GET)
    except CCPError as exc:
        form, release = ReleasePickForm(), None
        modeladmin.message_user(request, exc.message, messages.ERROR)
    blocks = [preview_block(instance=instance, release=release)] if release else []
    return TemplateResponse(request, PREVIEW_TEMPLATE, page_context(
        modeladmin, request, title=f"Preview of {instance}" + (f" for release {release}" if release else ""),
        original=instance, form=form, release=release, blocks=blocks, selection=None))


@admin.action(description="Preview upgrade to release…", permissions=["view"])
def preview_release(modeladmin, request, queryset):
    """Changelist action: the preview of every selected instance against one release (read-only)."""
    try:
        form, release = _picked_release(request.POST)
    except CCPError as exc:
        modeladmin.message_user(request, exc.message, messages.ERROR)
        return None
    queryset = queryset.select_related("node")
    blocks = [preview_block(instance=instance, release=release) for instance in queryset]
    return TemplateResponse(request, PREVIEW_TEMPLATE, page_context(
        modeladmin, request, title=f"Preview of {len(blocks)} instance(s) for release {release}",
        form=form, release=release, blocks=blocks, selection=queryset, action_name="preview_release"))


def preview_urls(modeladmin) -> list:
    """URL of the per-instance page, for `InstanceAdmin.get_urls`: admin:instances_instance_preview."""
    opts = modeladmin.model._meta
    view = modeladmin.admin_site.admin_view(lambda request, object_id: preview_view(modeladmin, request, object_id))
    return [path("<path:object_id>/preview/", view, name=f"{opts.app_label}_{opts.model_name}_preview")]
