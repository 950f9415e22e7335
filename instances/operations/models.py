"""The per-instance operation lock. Its table keeps the name it had under `upgrades` (upgrades_instancelock):
the model moved here with a state-only migration."""

from django.db import models

from .choices import OperationKind, StepStatus


class InstanceLock(models.Model):
    """At most one operation per instance: the primary key *is* the instance, so the database refuses
    a second row. The holder refreshes `heartbeat_at`; a lock whose holder died is taken away by the
    reconciler (instances.operations.reconcile) and reported on its operation."""

    instance = models.OneToOneField(
        "instances.Instance", on_delete=models.CASCADE, primary_key=True, related_name="lock"
    )
    kind = models.CharField(max_length=16, choices=OperationKind.choices)
    operation_id = models.BigIntegerField()
    owner = models.CharField(
        max_length=200, blank=True, default="", help_text="host:pid of the worker process holding the lock."
    )
    generation = models.BigIntegerField(
        default=0,
        help_text="Fencing token: raised on every claim and takeover; a runner's writes need the one it claimed.",
    )
    acquired_at = models.DateTimeField(auto_now_add=True)
    heartbeat_at = models.DateTimeField()

    class Meta:
        app_label = "instances"
        db_table = "upgrades_instancelock"

    def __str__(self) -> str:
        return f"{self.kind} #{self.operation_id} on {self.instance_id}"


class OperationStep(models.Model):
    """One step of a long operation (upgrade, deploy, backup, restore): the one progress record that the
    admin pages, the API and the progress endpoint all read. Keyed by operation kind and id, so every
    kind writes the same rows without this layer knowing the kinds' models.

    `key` is stable (what resume and clients match on); `name` is the label the operator reads. `output` is
    the redacted tail of the step's output, written while the step runs (instances.operations.progress);
    `output_offset` is how many characters were ever written to it, so a poller can ask for what is new.
    `bytes_done`/`bytes_total` are the progress of a step that moves data (backups, restores)."""

    kind = models.CharField(max_length=16, choices=OperationKind.choices)
    operation_id = models.BigIntegerField()
    position = models.PositiveIntegerField()
    key = models.CharField(max_length=100)
    name = models.CharField(max_length=200, help_text="What the operator reads (the step's label).")
    is_rollback = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=StepStatus.choices, default=StepStatus.RUNNING)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    output = models.TextField(blank=True, default="", help_text="The tail of the step's output, secrets redacted.")
    output_offset = models.BigIntegerField(
        default=0, help_text="Characters written to the output so far (the stored tail ends there)."
    )
    bytes_done = models.BigIntegerField(null=True, blank=True)
    bytes_total = models.BigIntegerField(null=True, blank=True)

    class Meta:
        app_label = "instances"
        ordering = ["kind", "operation_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "operation_id", "position"], name="operation_step_position")
        ]

    def __str__(self) -> str:
        return f"{self.position}. {self.name}"

    @property
    def duration_seconds(self) -> float | None:
        if self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None
