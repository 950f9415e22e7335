"""A notification target (an apprise URL, encrypted at rest) and one delivery of one event to it."""

from django.db import models

from instances import secrets

from .choices import SUBSCRIBABLE_EVENTS, DeliveryStatus, NotificationEvent


def all_events() -> list[str]:
    return [value for value, _ in SUBSCRIBABLE_EVENTS]


class NotificationTarget(models.Model):
    """Where notifications go. The URL names the service and carries its credentials (a Slack token, an
    SMTP password), so it is stored only as a Fernet token and never shown: the admin shows its scheme."""

    name = models.CharField(max_length=100, unique=True)
    url_encrypted = models.TextField(editable=False)
    service = models.CharField(
        max_length=32, editable=False, help_text="The URL's scheme (json, mailto, slack, ntfy…): all that is shown."
    )
    events = models.JSONField(default=all_events, blank=True, help_text="The events this target receives.")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_url(self) -> str:
        return secrets.decrypt_text(self.url_encrypted)

    def set_url(self, url: str) -> None:
        url = url.strip()
        self.url_encrypted = secrets.encrypt_text(url)
        self.service = url.split("://", 1)[0].lower()[:32] if "://" in url else ""

    def wants(self, event: str) -> bool:
        return self.enabled and event in (self.events or [])


class NotificationDelivery(models.Model):
    """One event sent (or being sent) to one target: what, to whom, how it went."""

    target = models.ForeignKey(NotificationTarget, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=32, choices=NotificationEvent.choices)
    title = models.CharField(max_length=300)
    body = models.TextField(blank=True, default="")
    link = models.CharField(max_length=1000, blank=True, default="")
    instance = models.ForeignKey(
        "instances.Instance", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    dedupe_key = models.CharField(
        max_length=200,
        blank=True,
        default="",
        help_text="What the message is about (e.g. upgrade-12): the same event about the same thing is sent once.",
    )
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "notification deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["target", "event", "dedupe_key"],
                condition=~models.Q(dedupe_key=""),
                name="notification_once_per_subject",
            )
        ]
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        return f"{self.event} to {self.target_id}: {self.title[:60]}"
