"""The "Roll out…" action on the Instance changelist (Django's delete_selected pattern, in three steps):

1. the form: target, mode, canary and wave sizes, per-node limit, failure budget, start time;
2. "Check instances" (post=check): each instance's current version and, for a release, its preview
   (computed now, nodes in parallel, a few at a time per node); blocked ones are shown as excluded;
3. "Start rollout" (post=yes): the previews shown are the approved ones (their hashes are posted back),
   the same service as the API creates the rollout, and the browser goes to the rollout's page.
"""

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from ccp.admin_mixins import page_context
from ccp.errors import CCPError
from instances.validators import validate_image_tag

from ..choices import UpgradeMode
from ..models import Release
from .services import rollout_check_instances, rollout_create
from .waves import parse_wave_spec


class RolloutForm(forms.Form):
    mode = forms.ChoiceField(choices=[c for c in UpgradeMode.choices if c[0] != UpgradeMode.FULL], label="Mode")
    image_tag = forms.CharField(
        max_length=128, required=False, validators=[validate_image_tag], label="Image tag (Quick upgrade)"
    )
    release = forms.ModelChoiceField(
        queryset=Release.objects.order_by("-created_at"), required=False, label="Release (upgrade to release)"
    )
    canary_size = forms.IntegerField(min_value=0, max_value=100_000, initial=1, label="Canary size")
    waves = forms.CharField(max_length=200, initial="rest", help_text='Sizes after the canary, e.g. "1,10%,50%,rest".')
    parallelism = forms.IntegerField(
        min_value=0, max_value=100_000, initial=0, help_text="At most this many at a time; 0: no cap."
    )
    per_node_limit = forms.IntegerField(min_value=1, max_value=100_000, required=False, help_text="Empty: the setting.")
    failure_budget = forms.IntegerField(
        min_value=0, max_value=100_000, initial=0, help_text="0: the first failure halts."
    )
    start_at = forms.DateTimeField(required=False, help_text="Optional: wait until then (YYYY-MM-DD HH:MM, UTC).")

    def clean_waves(self):
        try:
            parse_wave_spec(self.cleaned_data["waves"])
        except CCPError as exc:
            raise forms.ValidationError(exc.message)
        return self.cleaned_data["waves"]

    def clean(self):
        data = super().clean()
        if data.get("mode") == UpgradeMode.IMAGE_ONLY and not data.get("image_tag"):
            self.add_error("image_tag", "A Quick-upgrade rollout needs the image tag.")
        if data.get("mode") == UpgradeMode.RELEASE and not data.get("release"):
            self.add_error("release", "Choose the release to roll out.")
        return data


@admin.action(description="Roll out…", permissions=["rollout"])
def roll_out(modeladmin, request, queryset):
    instances = list(queryset.select_related("node").order_by("slug"))
    step = request.POST.get("post", "")
    form = RolloutForm(request.POST if step in ("check", "yes") else None)
    checks = None
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        release = data["release"] if data["mode"] == UpgradeMode.RELEASE else None
        try:
            if step == "yes":
                approved = {i.pk: request.POST.get(f"approve_{i.pk}", "") for i in instances}
                rollout = rollout_create(
                    instances=instances,
                    mode=data["mode"],
                    user=request.user,
                    release=release,
                    image_tag=data["image_tag"] if data["mode"] == UpgradeMode.IMAGE_ONLY else "",
                    canary_size=data["canary_size"],
                    waves=data["waves"],
                    parallelism=data["parallelism"],
                    per_node_limit=data["per_node_limit"],
                    failure_budget=data["failure_budget"],
                    start_at=data["start_at"],
                    approved_hashes=approved if data["mode"] == UpgradeMode.RELEASE else None,
                )
                modeladmin.message_user(
                    request, f"Started rollout #{rollout.pk} to {rollout.target}.", messages.SUCCESS
                )
                return HttpResponseRedirect(reverse("admin:upgrades_rollout_change", args=[rollout.pk]))
            checks = rollout_check_instances(instances=instances, mode=data["mode"], release=release)
        except CCPError as exc:
            modeladmin.message_user(request, exc.message, messages.ERROR)
    return TemplateResponse(
        request,
        "admin/upgrades/roll_out.html",
        page_context(
            modeladmin,
            request,
            queryset=instances,
            form=form,
            checks=checks,
            any_included=bool(checks) and any(not c.excluded for c in checks),
            title="Roll out",
        ),
    )
