"""The per-instance operation lock. Its table keeps the name it had under `upgrades` (upgrades_instancelock):
the model moved here with a state-only migration."""

from django.db import models

from .choices import OperationKind


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
