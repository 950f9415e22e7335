"""Admin pages that preview a release upgrade: one instance (its own URL) or a selection (an action).

Read-only: nothing is written to a node. One instance is previewed in the request; a selection is
a PreviewRun computed by a worker (instances.preview_runs), whose page shows its progress and then
the stored previews. Each instance's preview is a `PreviewBlock`, rendered by the include
`admin/instances/includes/preview_block.html` (with `preview_styles.html` once per page), so other
admin pages (the "Upgrade to release…" confirmation) can show exactly the same thing.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse

from ccp.admin_mixins import page_context
from ccp.errors import CCPError

from .choices import PreviewPurpose
from .context import releases_newest_first
from .models import PreviewRun
from .preview import release_or_default
from .preview_runs import preview_block, preview_run_blocks, preview_run_request

PREVIEW_TEMPLATE = "admin/instances/instance/preview.html"
PROGRESS_TEMPLATE = "admin/instances/instance/preview_progress.html"


class ReleasePickForm(forms.Form):
    release = forms.ModelChoiceField(
        queryset=None,
        to_field_name="version",
        empty_label=None,
        label="Release",
        help_text="Render with this release and compare.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["release"].queryset = releases_newest_first()


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
    return TemplateResponse(
        request,
        PREVIEW_TEMPLATE,
        page_context(
            modeladmin,
            request,
            title=f"Preview of {instance}" + (f" for release {release}" if release else ""),
            original=instance,
            form=form,
            release=release,
            blocks=blocks,
            selection=None,
        ),
    )


@admin.action(description="Preview upgrade to release…", permissions=["view"])
def preview_release(modeladmin, request, queryset):
    """Changelist action: queue the preview of every selected instance against one release (read-only
    for the nodes), then show its page, which follows the worker's progress."""
    try:
        _, release = _picked_release(request.POST)
    except CCPError as exc:
        modeladmin.message_user(request, exc.message, messages.ERROR)
        return None
    run = preview_run_request(
        instance_ids=list(queryset.values_list("pk", flat=True)),
        release=release,
        purpose=PreviewPurpose.PREVIEW,
        user=request.user,
    )
    return HttpResponseRedirect(reverse(preview_run_url_name(modeladmin), args=[run.pk]))


def preview_run_url_name(modeladmin, suffix: str = "preview_run") -> str:
    opts = modeladmin.model._meta
    return f"admin:{opts.app_label}_{opts.model_name}_{suffix}"


def preview_run_for(modeladmin, request, run_id: int, *, purpose: str) -> PreviewRun:
    run = get_object_or_404(PreviewRun, pk=run_id, purpose=purpose)
    if not modeladmin.has_view_permission(request):
        raise PermissionDenied
    return run


def preview_progress_response(modeladmin, request, run: PreviewRun, *, title: str) -> TemplateResponse:
    """The page while the worker computes the previews: refreshes itself until they are there."""
    return TemplateResponse(request, PROGRESS_TEMPLATE, page_context(modeladmin, request, title=title, run=run))


def preview_run_view(modeladmin, request, run_id: int):
    """GET preview-runs/<id>/: progress while the worker runs, then every instance's stored preview."""
    run = preview_run_for(modeladmin, request, run_id, purpose=PreviewPurpose.PREVIEW)
    title = f"Preview of {run.total} instance(s) for release {run.release_version}"
    if not run.is_final:
        return preview_progress_response(modeladmin, request, run, title=title)
    if run.error:
        modeladmin.message_user(request, run.error, messages.ERROR)
    release = release_or_default(run.release_version) if not run.error else None
    selection = modeladmin.model.objects.filter(pk__in=run.instance_ids)
    return TemplateResponse(
        request,
        PREVIEW_TEMPLATE,
        page_context(
            modeladmin,
            request,
            title=title,
            form=ReleasePickForm(initial={"release": run.release_version}),
            release=release,
            blocks=preview_run_blocks(run),
            selection=selection,
            action_name="preview_release",
        ),
    )


def preview_urls(modeladmin) -> list:
    """URLs of the per-instance page (admin:instances_instance_preview) and of a selection's preview
    run (admin:instances_instance_preview_run), for `InstanceAdmin.get_urls`."""
    opts = modeladmin.model._meta
    site = modeladmin.admin_site
    one = site.admin_view(lambda request, object_id: preview_view(modeladmin, request, object_id))
    many = site.admin_view(lambda request, run_id: preview_run_view(modeladmin, request, run_id))
    return [
        path("preview-runs/<int:run_id>/", many, name=f"{opts.app_label}_{opts.model_name}_preview_run"),
        path("<path:object_id>/preview/", one, name=f"{opts.app_label}_{opts.model_name}_preview"),
    ]
