"""Rollout and RolloutItem (app label `upgrades`; upgrades.models imports them so Django finds them)."""

from django.conf import settings
from django.db import models

from instances.validators import validate_image_tag

from ..choices import UpgradeMode
from .choices import ACTIVE_ROLLOUT_STATUSES, RolloutItemStatus, RolloutStatus


class Rollout(models.Model):
    """One target (a release, or an image tag for Quick upgrades) taken to many instances in waves.

    A row first, then a driver task: the admin page, the API and the command show progress by reading
    this row and its items. Changed only by the services (create, halt, resume, cancel) and the driver."""

    mode = models.CharField(max_length=16, choices=UpgradeMode.choices)
    release = models.ForeignKey(
        "upgrades.Release", on_delete=models.PROTECT, null=True, blank=True, related_name="rollouts"
    )
    image_tag = models.CharField(
        max_length=128, blank=True, default="", validators=[validate_image_tag], help_text="Quick upgrades: the tag."
    )
    canary_size = models.PositiveIntegerField(default=1, help_text="Instances upgraded alone first (wave 0).")
    waves = models.CharField(
        max_length=200,
        default="rest",
        help_text='The waves after the canary: sizes or percentages of all instances, e.g. "1,10%,50%,rest".',
    )
    parallelism = models.PositiveIntegerField(
        default=0, help_text="At most this many upgrades at a time in a wave; 0: only the per-node limit."
    )
    per_node_limit = models.PositiveIntegerField(
        null=True, blank=True, help_text="At most this many upgrades at a time on one node; empty: the setting."
    )
    failure_budget = models.PositiveIntegerField(
        default=0, help_text="Failures tolerated; one more halts the rollout (0: the first failure halts)."
    )
    start_at = models.DateTimeField(null=True, blank=True, help_text="Maintenance window: wait until then.")
    status = models.CharField(max_length=16, choices=RolloutStatus.choices, default=RolloutStatus.SCHEDULED)
    current_wave = models.PositiveIntegerField(default=0)
    reason = models.TextField(blank=True, default="", help_text="Why it halted or was cancelled.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The driver's heartbeat and the token of its self-scheduling chain (the reconciler starts a new chain
    # with a new token when the heartbeat is stale; a task of an old chain then stops).
    driven_at = models.DateTimeField(null=True, blank=True)
    tick_token = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ["-created_at"]
        permissions = [("operate_rollout", "Can start, halt, resume and cancel rollouts")]
        indexes = [models.Index(fields=["status"])]

    def __str__(self) -> str:
        return f"Rollout #{self.pk} to {self.target}"

    @property
    def target(self) -> str:
        return self.release.version if self.release_id else self.image_tag

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_ROLLOUT_STATUSES

    @property
    def effective_per_node_limit(self) -> int:
        return max(1, self.per_node_limit or settings.CCP_ROLLOUT_PER_NODE_LIMIT)


class RolloutItem(models.Model):
    """One instance of a rollout: its wave, its status, the upgrade that took it (the latest attempt)."""

    rollout = models.ForeignKey(Rollout, on_delete=models.CASCADE, related_name="items")
    # PROTECT as for upgrades: history outlives an instance being switched off.
    instance = models.ForeignKey("instances.Instance", on_delete=models.PROTECT, related_name="rollout_items")
    wave = models.PositiveIntegerField()
    position = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=RolloutItemStatus.choices, default=RolloutItemStatus.PENDING)
    upgrade = models.ForeignKey(
        "upgrades.Upgrade", on_delete=models.SET_NULL, null=True, blank=True, related_name="rollout_items"
    )
    attempts = models.PositiveIntegerField(default=0)
    from_version = models.CharField(max_length=128, blank=True, default="")
    approved_preview_hash = models.CharField(max_length=64, blank=True, default="")
    preview_summary = models.CharField(max_length=500, blank=True, default="")
    error = models.TextField(blank=True, default="")
    waiting_since = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["rollout", "position"]
        constraints = [models.UniqueConstraint(fields=["rollout", "instance"], name="rollout_item_instance")]

    def __str__(self) -> str:
        return f"{self.instance} in wave {self.wave}"
