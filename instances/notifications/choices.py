"""The events a notification target can ask for, and the states of one delivery."""

from django.db import models


class NotificationEvent(models.TextChoices):
    ROLLOUT_HALTED = "rollout.halted", "A rollout halted"
    ROLLOUT_FINISHED = "rollout.finished", "A rollout finished"
    UPGRADE_FAILED = "upgrade.failed", "An upgrade failed"
    UPGRADE_ROLLED_BACK = "upgrade.rolled_back", "An upgrade was rolled back"
    BACKUP_FAILED = "backup.failed", "A backup failed"
    BACKUP_MISSED = "backup.missed", "A scheduled backup was missed"
    INSTANCE_ATTENTION = "instance.attention", "An instance newly needs attention"
    INSTANCE_DRIFTED = "instance.drifted", "The nightly drift report found a new drift"
    NODE_HOST_KEY_CHANGED = "node.host_key_changed", "A node presented another host key"
    TEST = "test", "Test message (the admin's Send test action)"


# What a target can subscribe to: every event but the test, which goes to the targets it is sent to.
SUBSCRIBABLE_EVENTS = [(value, label) for value, label in NotificationEvent.choices if value != NotificationEvent.TEST]


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    RETRYING = "retrying", "Retrying"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
