"""One run of the drift report, and what it found on each instance."""

from django.db import models

from .choices import DriftReportStatus, DriftState


class DriftReport(models.Model):
    status = models.CharField(max_length=16, choices=DriftReportStatus.choices, default=DriftReportStatus.RUNNING)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    instance_count = models.PositiveIntegerField(default=0)
    drifted_count = models.PositiveIntegerField(default=0)
    unreachable_count = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-started_at", "-pk"]

    def __str__(self) -> str:
        return f"drift report #{self.pk} of {self.started_at:%Y-%m-%d %H:%M}"


class InstanceDrift(models.Model):
    """One instance in one report. `files`: [{"path", "status", "kind"}] of the files that differ from
    the render of its release (status changed/missing/new, kind values-only/structural)."""

    report = models.ForeignKey(DriftReport, on_delete=models.CASCADE, related_name="instances")
    instance = models.ForeignKey("instances.Instance", on_delete=models.CASCADE, related_name="drifts")
    state = models.CharField(max_length=16, choices=DriftState.choices)
    release_version = models.CharField(max_length=64, blank=True, default="")
    kind = models.CharField(max_length=16, blank=True, default="", help_text="values-only or structural")
    files = models.JSONField(default=list, blank=True)
    fingerprint = models.CharField(
        max_length=64, blank=True, default="", help_text="The preview hash: a drift that changes changes it."
    )
    changed = models.BooleanField(
        default=False, help_text="A drift other than the one the last report that reached the instance found."
    )
    error = models.TextField(blank=True, default="")
    checked_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-report_id", "instance_id"]
        constraints = [models.UniqueConstraint(fields=["report", "instance"], name="drift_once_per_report")]
        indexes = [models.Index(fields=["instance", "-report"])]

    def __str__(self) -> str:
        return f"{self.instance_id}: {self.state}"

    @property
    def file_summary(self) -> str:
        return ", ".join(f"{f['path']} ({f['status']}, {f['kind']})" for f in self.files)
