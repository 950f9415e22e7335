"""The upgrade actions on the Instance changelist: "Quick upgrade…" and "Upgrade to release…".

Both follow Django's delete_selected pattern: the first phase renders an intermediate page that
re-posts the selected ids; the second (post=yes) calls the same service the API calls.
"""

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from ccp.admin_mixins import page_context
from ccp.errors import CCPError
from instances.admin_preview import preview_block
from instances.preview import release_or_default
from instances.validators import validate_image_tag

from .choices import UpgradeMode
from .models import Release
from .services import upgrade_request


class QuickUpgradeForm(forms.Form):
    image_tag = forms.CharField(max_length=128, validators=[validate_image_tag], label="Target image tag")


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
        modeladmin.message_user(request, format_html("Started {} upgrade(s): {}", len(started), links),
                                messages.SUCCESS)
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
    return TemplateResponse(request, "admin/upgrades/quick_upgrade.html",
                            page_context(modeladmin, request, queryset=queryset, form=form, title="Quick upgrade"))


@admin.action(description="Upgrade to release…", permissions=["operate"])
def upgrade_to_release(modeladmin, request, queryset):
    queryset = queryset.select_related("node")
    if request.POST.get("post") == "yes":
        release = release_or_default(request.POST.get("release_version"))
        approved = [(i, {"mode": UpgradeMode.RELEASE, "release": release,
                         "preview_hash": request.POST.get(f"approve_{i.pk}", "")})
                    for i in queryset if request.POST.get(f"approve_{i.pk}")]
        if not approved:
            modeladmin.message_user(request, "No instance was approved; nothing started.", messages.WARNING)
            return None
        _start(modeladmin, request, approved)
        return None
    form = ReleaseChoiceForm(request.POST if "release" in request.POST else None)
    release = form.cleaned_data["release"] if form.is_bound and form.is_valid() else None
    if release is None:
        try:
            release = release_or_default()
        except CCPError as exc:
            modeladmin.message_user(request, exc.message, messages.ERROR)
            return None
        form = ReleaseChoiceForm(initial={"release": release})
    blocks = [preview_block(instance=instance, release=release) for instance in queryset]
    rows = [{"block": b, "confirmable": b.report is not None and not b.report.blocked} for b in blocks]
    return TemplateResponse(request, "admin/upgrades/upgrade_to_release.html", page_context(
        modeladmin, request, queryset=queryset, form=form, release=release, rows=rows,
        any_confirmable=any(r["confirmable"] for r in rows), title=f"Upgrade to release {release}"))
