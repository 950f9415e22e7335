"""Node and Instance (DESIGN.md §4). Secrets are stored only as Fernet tokens."""

from django.core.exceptions import ValidationError
from django.db import models

from . import secrets, validators
from .choices import (
    BackupLabel,
    BackupStatus,
    DriverKind,
    Health,
    InstanceStatus,
    PreviewPurpose,
    PreviewRunStatus,
    RestoreStatus,
)
from .operations.models import InstanceLock  # noqa: F401 - the lock model belongs to this app


def default_protected_paths() -> list[str]:
    return ["mkdocs/"]


class Node(models.Model):
    """A Linux host reached over SSH (or this host, with the local driver)."""

    name = models.CharField(max_length=63, unique=True, validators=[validators.validate_slug])
    address = models.CharField(
        max_length=253, validators=[validators.validate_address], help_text="Hostname or IP address."
    )
    ssh_port = models.PositiveIntegerField(default=22, validators=[validators.validate_port])
    ssh_user = models.CharField(max_length=32, default="root", validators=[validators.validate_unix_user])
    driver = models.CharField(max_length=8, choices=DriverKind.choices, default=DriverKind.SSH)
    ssh_private_key_encrypted = models.TextField(blank=True, default="", editable=False)
    ssh_key_path = models.CharField(
        max_length=500,
        blank=True,
        default="",
        help_text="Path of a private key file on the panel host, used when no key is stored.",
    )
    instance_root = models.CharField(
        max_length=500,
        default="/srv/ccp",
        validators=[validators.validate_absolute_dir],
        help_text="Directory under which this node's instances live.",
    )
    registry_access = models.BooleanField(
        default=True, help_text="Off: the node cannot log in to the image registry; images are shipped to it."
    )
    image_source = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="For a node without registry access: another node whose engine holds images the panel host "
        "does not have (e.g. images built there). Images are shipped from the panel host first.",
    )

    host_key_type = models.CharField(max_length=64, blank=True, default="", editable=False)
    host_key_base64 = models.TextField(blank=True, default="", editable=False)
    host_key_fingerprint = models.CharField(max_length=128, blank=True, default="", editable=False)
    host_key_pinned_at = models.DateTimeField(null=True, blank=True, editable=False)

    docker_version = models.CharField(max_length=64, blank=True, default="", editable=False)
    compose_version = models.CharField(max_length=64, blank=True, default="", editable=False)
    disk_free_bytes = models.BigIntegerField(null=True, blank=True, editable=False)
    checked_at = models.DateTimeField(null=True, blank=True, editable=False)
    check_ok = models.BooleanField(null=True, editable=False)
    check_error = models.TextField(blank=True, default="", editable=False)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        permissions = [("operate_node", "Can check nodes and re-pin host keys")]

    def __str__(self) -> str:
        return self.name

    def get_private_key(self) -> str:
        return secrets.decrypt_text(self.ssh_private_key_encrypted)

    def set_private_key(self, pem: str) -> None:
        self.ssh_private_key_encrypted = secrets.encrypt_text(pem.strip() + "\n" if pem.strip() else "")

    @property
    def has_private_key(self) -> bool:
        return bool(self.ssh_private_key_encrypted)

    def clean(self) -> None:
        # Panel-host settings (README "Security model"): checked here so admin, API and commands agree.
        errors = {}
        for field, check in (
            ("driver", validators.validate_local_driver_allowed),
            ("ssh_key_path", validators.validate_ssh_key_path),
        ):
            try:
                check(getattr(self, field))
            except ValidationError as exc:
                errors[field] = exc.messages
        if self.image_source_id and self.image_source_id == self.pk:
            errors["image_source"] = ["A node cannot be its own image source."]
        elif self.image_source_id and self.registry_access:
            errors["image_source"] = [
                "Only a node without registry access uses an image source: untick Registry "
                "access, or clear the image source."
            ]
        if errors:
            raise ValidationError(errors)


class Instance(models.Model):
    """A tenant deployment: one docker compose project in a directory on a node."""

    name = models.CharField(max_length=200)
    slug = models.CharField(
        max_length=63,
        unique=True,
        validators=[validators.validate_slug],
        help_text="DNS-safe identifier: lower-case letters, digits and hyphens.",
    )
    node = models.ForeignKey(Node, on_delete=models.PROTECT, related_name="instances")
    install_dir = models.CharField(
        max_length=500,
        validators=[validators.validate_absolute_dir],
        help_text="Absolute directory of the compose project on the node.",
    )
    compose_project = models.CharField(
        max_length=63, blank=True, validators=[validators.validate_compose_project], help_text="Empty: the slug."
    )
    image_tag = models.CharField(
        max_length=128,
        blank=True,
        default="",
        validators=[validators.validate_image_tag],
        help_text="Empty: the fleet default (the default release's tag).",
    )
    is_registered = models.BooleanField(
        default=False, help_text="Installed by the install script: keeps its own .env, which CCP never renders."
    )
    secrets_encrypted = models.TextField(blank=True, default="", editable=False)
    domain = models.CharField(max_length=253, blank=True, default="", validators=[validators.validate_domain])
    ports = models.JSONField(
        default=dict,
        blank=True,
        validators=[validators.validate_ports],
        help_text='Named ports on the node, e.g. {"http": 8080}.',
    )
    profiles = models.CharField(
        max_length=300,
        blank=True,
        default="",
        validators=[validators.validate_profiles],
        help_text="Enabled compose profiles (COMPOSE_PROFILES), comma-separated.",
    )
    protected_paths = models.JSONField(
        default=default_protected_paths,
        blank=True,
        validators=[validators.validate_path_list],
        help_text="Tenant content an upgrade must never change.",
    )
    health_urls = models.JSONField(default=list, blank=True, validators=[validators.validate_url_list])
    upgrade_script = models.CharField(
        max_length=300, default="scripts/upgrade.sh", validators=[validators.validate_relative_path]
    )
    backup_enabled = models.BooleanField(default=True, help_text="Included in the scheduled backups.")
    status = models.CharField(max_length=16, choices=InstanceStatus.choices, default=InstanceStatus.ACTIVE)

    observed_version = models.CharField(max_length=128, blank=True, default="", editable=False)
    health = models.CharField(max_length=16, choices=Health.choices, default=Health.UNKNOWN, editable=False)
    health_checked_at = models.DateTimeField(null=True, blank=True, editable=False)
    health_error = models.TextField(
        blank=True, default="", editable=False, help_text="Why the last health check failed or could not run."
    )

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]
        constraints = [
            models.UniqueConstraint(
                fields=["node", "install_dir"],
                name="instance_unique_dir_per_node",
                violation_error_message="Another instance already lives in this directory on this node.",
            ),
            models.UniqueConstraint(
                fields=["node", "compose_project"],
                name="instance_unique_project_per_node",
                violation_error_message="Another instance on this node already uses this compose project name.",
            ),
        ]
        permissions = [
            ("operate_instance", "Can run operations (upgrade, back up, check) on instances"),
            ("reveal_secrets", "Can see secret values in rendered files"),
            (
                "relocate_instance",
                "Can move an instance to another node or change its install directory or upgrade script",
            ),
        ]

    def __str__(self) -> str:
        return self.slug

    def get_secrets(self) -> dict[str, str]:
        return secrets.decrypt_json(self.secrets_encrypted)

    def set_secrets(self, values: dict[str, str]) -> None:
        self.secrets_encrypted = secrets.encrypt_json(values)

    @property
    def secret_names(self) -> list[str]:
        return sorted(self.get_secrets())

    @property
    def attention(self) -> str:
        """Why an operator must look at this instance: the unresolved attention records, newest first."""
        return "\n".join(a.reason for a in self.unresolved_attention)

    @property
    def unresolved_attention(self) -> list["Attention"]:
        # Uses a prefetch of `attentions` when the caller made one (lists, the dashboard).
        return [a for a in self.attentions.all() if a.resolved_at is None]

    @property
    def profile_list(self) -> list[str]:
        return [p.strip() for p in self.profiles.split(",") if p.strip()]

    def clean(self) -> None:
        if not self.compose_project and self.slug:
            self.compose_project = self.slug
        if self.node_id and isinstance(self.ports, dict):
            self._check_ports_free_on_node()

    def _check_ports_free_on_node(self) -> None:
        others = Instance.objects.filter(node_id=self.node_id).exclude(pk=self.pk).only("slug", "ports")
        taken = {port: other.slug for other in others for port in (other.ports or {}).values()}
        clashes = [f"{port} (used by {taken[port]})" for port in self.ports.values() if port in taken]
        if clashes:
            raise ValidationError({"ports": f"Already used on node {self.node}: {', '.join(clashes)}."})


class Attention(models.Model):
    """Something an operator must look at on an instance (a failed rollback, an interrupted operation).

    Raised by the operation that found it; resolved by an operator (with a note, audited) or by a later
    successful upgrade or restore of the instance, which says so in `resolution`.
    """

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="attentions")
    reason = models.TextField()
    operation_kind = models.CharField(
        max_length=16, blank=True, default="", help_text="upgrade, backup or restore: the operation that raised it."
    )
    operation_id = models.BigIntegerField(null=True, blank=True)
    raised_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey("auth.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    resolution = models.TextField(
        blank=True, default="", help_text="The operator's note, or which operation resolved it."
    )

    class Meta:
        ordering = ["-raised_at", "-pk"]
        indexes = [
            models.Index(fields=["instance", "resolved_at"]),
            # The dashboard's "needs attention" list: a handful of open records among thousands.
            models.Index(fields=["instance"], condition=models.Q(resolved_at__isnull=True), name="attention_open"),
        ]

    def __str__(self) -> str:
        raised_by = f"{self.operation_kind} #{self.operation_id}" if self.operation_kind else "CCP"
        return f"Attention on {self.instance}: {raised_by}: {self.reason[:80]}"

    @property
    def is_resolved(self) -> bool:
        return self.resolved_at is not None


class Backup(models.Model):
    """One backup of one instance (DESIGN.md §8): a folder under BACKUP_ROOT with a MANIFEST.txt."""

    instance = models.ForeignKey(Instance, on_delete=models.PROTECT, related_name="backups")
    label = models.CharField(max_length=16, choices=BackupLabel.choices, default=BackupLabel.MANUAL)
    status = models.CharField(max_length=16, choices=BackupStatus.choices, default=BackupStatus.PENDING)
    location = models.CharField(
        max_length=1000, blank=True, default="", help_text="The backup folder, relative to BACKUP_ROOT."
    )
    size_bytes = models.BigIntegerField(null=True, blank=True)
    manifest = models.JSONField(default=dict, blank=True, help_text="file → {sha256, size}")
    requested_by = models.ForeignKey("auth.User", on_delete=models.SET_NULL, null=True, blank=True)
    task_id = models.CharField(max_length=64, blank=True, default="")
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    verify_ok = models.BooleanField(null=True)
    verify_error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-created_at"]
        permissions = [("restore_backup", "Can restore a backup onto its instance")]
        indexes = [models.Index(fields=["instance", "-created_at"]), models.Index(fields=["status", "label"])]

    def __str__(self) -> str:
        when = f"{self.created_at:%Y-%m-%d %H:%M}" if self.created_at else "not yet taken"
        return f"Backup of {self.instance}, {self.get_label_display().lower()}, {when}"


class Restore(models.Model):
    """Putting one backup back onto its instance: a row first, then a Celery task (instances.backups.restore)."""

    backup = models.ForeignKey(Backup, on_delete=models.SET_NULL, null=True, related_name="restores")
    source = models.CharField(
        max_length=1000,
        blank=True,
        default="",
        help_text="The backup folder restored from (kept when the backup is pruned).",
    )
    instance = models.ForeignKey(Instance, on_delete=models.PROTECT, related_name="restores")
    status = models.CharField(max_length=16, choices=RestoreStatus.choices, default=RestoreStatus.PENDING)
    requested_by = models.ForeignKey("auth.User", on_delete=models.SET_NULL, null=True, blank=True)
    task_id = models.CharField(max_length=64, blank=True, default="")
    log = models.TextField(blank=True, default="", help_text="One line per step, as it happens.")
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        what = str(self.backup) if self.backup_id else (self.source or "a pruned backup")
        return f"Restore of {what} onto {self.instance}"


class PreviewRun(models.Model):
    """Previews of a selection of instances against one release, computed by a worker in parallel
    across nodes (never in a web request). The admin page shows its progress, then the stored
    reports — already redacted — and, for an upgrade, the approval form."""

    purpose = models.CharField(max_length=16, choices=PreviewPurpose.choices, default=PreviewPurpose.PREVIEW)
    release_version = models.CharField(max_length=64)
    instance_ids = models.JSONField(default=list)
    status = models.CharField(max_length=16, choices=PreviewRunStatus.choices, default=PreviewRunStatus.PENDING)
    done = models.PositiveIntegerField(default=0, help_text="How many instances are previewed so far.")
    results = models.JSONField(
        default=dict, blank=True, help_text="instance id → its redacted preview report, or the error."
    )
    error = models.TextField(blank=True, default="")
    requested_by = models.ForeignKey("auth.User", on_delete=models.SET_NULL, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"preview #{self.pk} of {len(self.instance_ids)} instance(s) for {self.release_version}"

    @property
    def total(self) -> int:
        return len(self.instance_ids)

    @property
    def is_final(self) -> bool:
        return self.status in (PreviewRunStatus.SUCCEEDED, PreviewRunStatus.FAILED)


# Models of this app that live in their concept's package.
from .drift.models import DriftReport, InstanceDrift  # noqa: E402,F401
from .notifications.models import NotificationDelivery, NotificationTarget  # noqa: E402,F401
