"""The upgrade actions on the Instance changelist: "Quick upgrade…" and "Upgrade to release…".

Both follow Django's delete_selected pattern: the first phase shows an intermediate page that
re-posts the selected ids; the second (post=yes) calls the same service the API calls. For "Upgrade
to release…" that page needs every instance's preview: the first phase queues a PreviewRun (a
worker reads the nodes) and its page follows the progress, then shows the approval form.
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from ccp.admin_mixins import page_context
from ccp.errors import CCPError
from instances.admin_preview import preview_progress_response, preview_run_for, preview_run_url_name
from instances.choices import PreviewPurpose
from instances.models import Instance
from instances.preview import release_or_default
from instances.preview_runs import preview_run_blocks, preview_run_request
from instances.validators import validate_image_tag

from .choices import UpgradeMode
from .models import Release
from .registry import is_downgrade, registry_tags
from .rollouts.admin_actions import roll_out  # noqa: F401 - the Instance admin finds it here with the others
from .services import upgrade_request


class QuickUpgradeForm(forms.Form):
    image_tag = forms.CharField(
        max_length=128,
        validators=[validate_image_tag],
        label="Target image tag",
        widget=forms.TextInput(attrs={"list": "registry-tags", "autocomplete": "off"}),
        help_text="Suggested: the tags the registry has for the first selected instance's images; type any tag.",
    )


class ReleaseChoiceForm(forms.Form):
    release = forms.ModelChoiceField(queryset=Release.objects.order_by("-created_at"), empty_label=None)


def _start(modeladmin, request, instances_and_kwargs) -> None:
    started, refused = [], []
    for instance, kwargs in instances_and_kwargs:
        try:
            upgrade = upgrade_request(instance=instance, user=request.user, **kwargs)
            started.append((reverse("admin:upgrades_upgrade_change", args=[upgrade.pk]), f"{instance} #{upgrade.pk}"))
        except CCPError as exc:
            refused.append(f"{instance}: {exc.message}")
    if started:
        links = format_html_join(", ", '<a href="{}">{}</a>', started)
        modeladmin.message_user(
            request, format_html("Started {} upgrade(s): {}", len(started), links), messages.SUCCESS
        )
    for line in refused:
        modeladmin.message_user(request, line, messages.ERROR)


@admin.action(description="Quick upgrade (image tag)…", permissions=["operate"])
def quick_upgrade(modeladmin, request, queryset):
    queryset = queryset.select_related("node")
    form = QuickUpgradeForm(request.POST if request.POST.get("post") == "yes" else None)
    if form.is_bound and form.is_valid():
        tag = form.cleaned_data["image_tag"]
        _start(modeladmin, request, [(i, {"mode": UpgradeMode.IMAGE_ONLY, "image_tag": tag}) for i in queryset])
        return None
    first = queryset.first()
    listing = registry_tags(first) if first is not None else None
    return TemplateResponse(
        request,
        "admin/upgrades/quick_upgrade.html",
        page_context(modeladmin, request, queryset=queryset, form=form, title="Quick upgrade", listing=listing),
    )


@admin.action(description="Upgrade to release…", permissions=["operate"])
def upgrade_to_release(modeladmin, request, queryset):
    queryset = queryset.select_related("node")
    if request.POST.get("post") == "yes":
        release = release_or_default(request.POST.get("release_version"))
        approved = [
            (
                i,
                {
                    "mode": UpgradeMode.RELEASE,
                    "release": release,
                    "preview_hash": request.POST.get(f"approve_{i.pk}", ""),
                },
            )
            for i in queryset
            if request.POST.get(f"approve_{i.pk}")
        ]
        if not approved:
            modeladmin.message_user(request, "No instance was approved; nothing started.", messages.WARNING)
            return None
        _start(modeladmin, request, approved)
        return None
    form = ReleaseChoiceForm(request.POST if "release" in request.POST else None)
    release = form.cleaned_data["release"] if form.is_bound and form.is_valid() else None
    try:
        release = release or release_or_default()
    except CCPError as exc:
        modeladmin.message_user(request, exc.message, messages.ERROR)
        return None
    # The previews are computed by a worker; the confirmation page follows its progress.
    run = preview_run_request(
        instance_ids=list(queryset.values_list("pk", flat=True)),
        release=release,
        purpose=PreviewPurpose.UPGRADE,
        user=request.user,
    )
    return HttpResponseRedirect(reverse(preview_run_url_name(modeladmin, "upgrade_confirm"), args=[run.pk]))


def upgrade_confirm_view(modeladmin, request, run_id: int):
    """GET upgrade-to-release/<id>/: progress while the worker previews, then each instance's preview
    with its approval box (the form posts the approved hashes back to the changelist action)."""
    if not modeladmin.has_operate_permission(request):
        raise PermissionDenied
    run = preview_run_for(modeladmin, request, run_id, purpose=PreviewPurpose.UPGRADE)
    if not run.is_final:
        return preview_progress_response(modeladmin, request, run, title=f"Upgrade to release {run.release_version}")
    if run.error:
        modeladmin.message_user(request, run.error, messages.ERROR)
        return HttpResponseRedirect(reverse(preview_run_url_name(modeladmin, "changelist")))
    release = release_or_default(run.release_version)
    rows = [{"block": b, "confirmable": b.report is not None and not b.report.blocked} for b in preview_run_blocks(run)]
    return TemplateResponse(
        request,
        "admin/upgrades/upgrade_to_release.html",
        page_context(
            modeladmin,
            request,
            queryset=[row["block"].instance for row in rows],
            form=ReleaseChoiceForm(initial={"release": release}),
            release=release,
            rows=rows,
            any_confirmable=any(r["confirmable"] for r in rows),
            title=f"Upgrade to release {release}",
        ),
    )


class InstanceQuickUpgradeForm(forms.Form):
    registry_tag = forms.ChoiceField(required=False, label="Tag from the registry")
    image_tag = forms.CharField(
        required=False,
        max_length=128,
        validators=[validate_image_tag],
        label="Or type a tag",
        help_text="A tag the registry does not list (yet) is fine: the upgrade pulls it and says so if it is missing.",
    )
    confirm_downgrade = forms.BooleanField(required=False, label="Yes, go back to this older version")

    def __init__(self, *args, tags: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["registry_tag"].choices = [("", "—")] + [(tag, tag) for tag in tags]

    def target(self) -> str:
        return self.cleaned_data["image_tag"].strip() or self.cleaned_data["registry_tag"]


def instance_quick_upgrade_view(modeladmin, request, object_id: int):
    """GET/POST <instance>/quick-upgrade/: one instance's Quick upgrade, its tag picked from the registry's
    tags (or typed); going to an older version than what runs asks for a tick first."""
    if not modeladmin.has_operate_permission(request):
        raise PermissionDenied
    instance = get_object_or_404(Instance.objects.select_related("node"), pk=object_id)
    listing = registry_tags(instance)
    current = instance.observed_version or instance.image_tag
    asked = request.GET.get("tag", "")
    form = InstanceQuickUpgradeForm(
        request.POST if request.method == "POST" else None,
        tags=listing.tags,
        initial={
            "registry_tag": asked if asked in listing.tags else "",
            "image_tag": "" if asked in listing.tags else asked,
        },
    )
    if form.is_bound and form.is_valid():
        tag = form.target()
        if not tag:
            form.add_error(None, "Pick a tag from the registry's list or type one.")
        elif is_downgrade(current, tag) and not form.cleaned_data["confirm_downgrade"]:
            form.add_error(
                "confirm_downgrade", f"{tag} is older than {current}, which runs now: tick the box to go back."
            )
        else:
            try:
                upgrade = upgrade_request(
                    instance=instance, user=request.user, mode=UpgradeMode.IMAGE_ONLY, image_tag=tag
                )
            except CCPError as exc:
                form.add_error(None, exc.message)
            else:
                modeladmin.message_user(request, f"Started: {upgrade}.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:upgrades_upgrade_change", args=[upgrade.pk]))
    return TemplateResponse(
        request,
        "admin/upgrades/instance_quick_upgrade.html",
        page_context(
            modeladmin,
            request,
            title=f"Quick upgrade of {instance.name}",
            original=instance,
            form=form,
            listing=listing,
            current=current,
            downgrade_warning=bool(asked) and is_downgrade(current, asked),
            asked=asked,
        ),
    )


def instance_upgrade_to_release_view(modeladmin, request, object_id: int):
    """POST <instance>/upgrade-to-release/: the single-instance preview page's "Upgrade to this release",
    with the hash of the preview the operator saw (the upgrade refuses if the node or the render changed)."""
    if not modeladmin.has_operate_permission(request):
        raise PermissionDenied
    instance = get_object_or_404(Instance, pk=object_id)
    preview_url = reverse("admin:instances_instance_preview", args=[instance.pk])
    if request.method != "POST":
        return HttpResponseRedirect(preview_url)
    try:
        release = release_or_default(request.POST.get("release_version", ""))
        upgrade = upgrade_request(
            instance=instance,
            user=request.user,
            mode=UpgradeMode.RELEASE,
            release=release,
            preview_hash=request.POST.get("preview_hash", ""),
        )
    except CCPError as exc:
        modeladmin.message_user(request, exc.message, messages.ERROR)
        return HttpResponseRedirect(preview_url)
    modeladmin.message_user(request, f"Started: {upgrade}.", messages.SUCCESS)
    return HttpResponseRedirect(reverse("admin:upgrades_upgrade_change", args=[upgrade.pk]))


def upgrade_urls(modeladmin) -> list:
    """URLs of the confirmation page (admin:instances_instance_upgrade_confirm) and of one instance's Quick
    upgrade and release upgrade (…_quick_upgrade, …_upgrade_release), for `InstanceAdmin.get_urls`."""
    opts = modeladmin.model._meta
    prefix = f"{opts.app_label}_{opts.model_name}"
    site = modeladmin.admin_site
    view = site.admin_view(lambda request, run_id: upgrade_confirm_view(modeladmin, request, run_id))
    quick = site.admin_view(lambda request, object_id: instance_quick_upgrade_view(modeladmin, request, object_id))
    release = site.admin_view(
        lambda request, object_id: instance_upgrade_to_release_view(modeladmin, request, object_id)
    )
    return [
        path("upgrade-to-release/<int:run_id>/", view, name=f"{prefix}_upgrade_confirm"),
        path("<int:object_id>/quick-upgrade/", quick, name=f"{prefix}_quick_upgrade"),
        path("<int:object_id>/upgrade-to-release/", release, name=f"{prefix}_upgrade_release"),
    ]
