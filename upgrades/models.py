"""Release (DESIGN.md §4) and Upgrade. An upgrade's steps and the instance lock are instances.operations'."""

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from instances.operations.choices import OperationKind
from instances.operations.progress import operation_steps
from instances.validators import validate_image_tag

from .choices import FINAL_UPGRADE_STATUSES, UpgradeMode, UpgradeStatus

VERSION_RE = re.compile(r"^v?[0-9]+(\.[0-9]+){0,3}([-+.][A-Za-z0-9.]+)?$")
TEMPLATE_SET_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def validate_version(value: str) -> None:
    if not VERSION_RE.match(value or ""):
        raise ValidationError("%(value)r is not a release version like v2.10.3.", params={"value": value})


def validate_template_set(value: str) -> None:
    if not TEMPLATE_SET_RE.match(value or ""):
        raise ValidationError("%(value)r is not a valid template set name.", params={"value": value})
    if not (settings.CCP_TEMPLATE_ROOT / value / "manifest.yml").is_file():
        raise ValidationError("There is no template set %(value)r under deploy_templates/.", params={"value": value})


class Release(models.Model):
    """A product version: the image tag it ships and the template set it renders with."""

    version = models.CharField(max_length=64, unique=True, validators=[validate_version])
    image_tag = models.CharField(max_length=128, validators=[validate_image_tag])
    template_set = models.CharField(max_length=63, default="campaign", validators=[validate_template_set])
    registry = models.CharField(
        max_length=255, blank=True, default="", help_text="Image registry prefix; empty: CCP_IMAGE_REGISTRY."
    )
    is_default = models.BooleanField(
        default=False, help_text="The fleet default: instances without their own tag run it."
    )
    notes = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"],
                condition=models.Q(is_default=True),
                name="release_single_default",
                violation_error_message="Only one release can be the fleet default.",
            ),
        ]

    def __str__(self) -> str:
        return self.version

    @property
    def image_registry(self) -> str:
        return self.registry or settings.CCP_IMAGE_REGISTRY


class Upgrade(models.Model):
    """One upgrade of one instance: a row first, then a Celery task. Its steps (`steps`) are its live log."""

    # PROTECT: an instance's upgrade history outlives it being switched off (disable it, never delete it).
    instance = models.ForeignKey("instances.Instance", on_delete=models.PROTECT, related_name="upgrades")
    mode = models.CharField(max_length=16, choices=UpgradeMode.choices)
    release = models.ForeignKey(Release, on_delete=models.PROTECT, null=True, blank=True, related_name="upgrades")
    from_version = models.CharField(max_length=128, blank=True, default="")
    to_version = models.CharField(max_length=128, blank=True, default="")
    target_tag = models.CharField(max_length=128, blank=True, default="", validators=[validate_image_tag])
    status = models.CharField(max_length=32, choices=UpgradeStatus.choices, default=UpgradeStatus.PENDING)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    task_id = models.CharField(max_length=64, blank=True, default="")
    approved_preview_hash = models.CharField(max_length=64, blank=True, default="")
    detached_job_id = models.CharField(
        max_length=64, blank=True, default="", help_text="The tenant script's job on the node (full mode)."
    )
    is_first_deploy = models.BooleanField(
        default=False, help_text="The instance had no files on the node: this upgrade deployed it."
    )
    state = models.JSONField(
        default=dict, blank=True, help_text="What a resumed run needs (protected checksums before the upgrade)."
    )
    cancel_requested = models.BooleanField(default=False)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        permissions = [("cancel_upgrade", "Can cancel a running upgrade")]
        indexes = [models.Index(fields=["instance", "-created_at"]), models.Index(fields=["status"])]

    def __str__(self) -> str:
        return f"{self.kind_display} of {self.instance} to {self.to_version or self.target_tag}"

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_UPGRADE_STATUSES

    @property
    def kind_display(self) -> str:
        """What the operator calls it: "Deploy" for a first deploy, else the mode."""
        return "Deploy" if self.is_first_deploy else self.get_mode_display()

    @property
    def steps(self):
        """Its steps, in order: the operation layer's progress record (instances.operations.progress)."""
        return operation_steps(kind=OperationKind.UPGRADE, operation_id=self.pk)

    @property
    def step_list(self) -> list:
        """The steps as a list: loaded for many upgrades at once by selectors.upgrades_with_steps."""
        if self._step_list is None:
            self._step_list = list(self.steps)
        return self._step_list

    @step_list.setter
    def step_list(self, steps: list) -> None:
        self._step_list = steps

    _step_list = None

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


from .rollouts.models import Rollout, RolloutItem  # noqa: E402,F401 - Django finds the app's models here
