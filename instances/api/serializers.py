"""Input and output serializers for nodes and instances. Secret values are write-only."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from instances.drift.choices import DriftState
from instances.drift.models import InstanceDrift
from instances.models import Attention, Instance, Node


class NodeSerializer(serializers.ModelSerializer):
    private_key = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        style={"base_template": "textarea.html"},
        help_text="OpenSSH/PEM private key; stored encrypted, never returned.",
    )
    has_private_key = serializers.BooleanField(read_only=True)
    image_source = serializers.SlugRelatedField(
        slug_field="name",
        queryset=Node.objects.all(),
        required=False,
        allow_null=True,
        help_text="Node without registry access: another node whose engine holds images the panel host lacks.",
    )

    class Meta:
        model = Node
        fields = [
            "id",
            "name",
            "address",
            "ssh_port",
            "ssh_user",
            "driver",
            "ssh_key_path",
            "private_key",
            "has_private_key",
            "instance_root",
            "registry_access",
            "image_source",
            "host_key_type",
            "host_key_fingerprint",
            "host_key_pinned_at",
            "docker_version",
            "compose_version",
            "disk_free_bytes",
            "checked_at",
            "check_ok",
            "check_error",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "host_key_type",
            "host_key_fingerprint",
            "host_key_pinned_at",
            "docker_version",
            "compose_version",
            "disk_free_bytes",
            "checked_at",
            "check_ok",
            "check_error",
            "created_at",
            "updated_at",
        ]


class AttentionSerializer(serializers.ModelSerializer):
    resolved_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Attention
        fields = [
            "id",
            "reason",
            "operation_kind",
            "operation_id",
            "raised_at",
            "resolved_at",
            "resolved_by",
            "resolution",
        ]


class AcknowledgeSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=2000, help_text="What you checked or did; kept with the records.")


class RepinRequestSerializer(serializers.Serializer):
    fingerprint = serializers.RegexField(
        r"^SHA256:[A-Za-z0-9+/]{43}$",
        required=False,
        allow_blank=True,
        help_text="The SHA256 fingerprint checked out of band, e.g. SHA256:… as `ssh-keygen -lf` prints it.",
    )


class DriftFileSerializer(serializers.Serializer):
    path = serializers.CharField()
    status = serializers.CharField(help_text="changed, missing or new")
    kind = serializers.CharField(help_text="values-only or structural")


class DriftSerializer(serializers.Serializer):
    """What the latest drift report found on the instance (README "Drift report")."""

    state = serializers.ChoiceField(choices=DriftState.choices)
    kind = serializers.CharField(help_text="values-only or structural when drifted; empty otherwise")
    files = DriftFileSerializer(many=True)


class InstanceSerializer(serializers.ModelSerializer):
    node = serializers.SlugRelatedField(slug_field="name", queryset=Node.objects.all())
    compose_project = serializers.CharField(required=False, allow_blank=True, max_length=63)
    secrets = serializers.DictField(
        child=serializers.CharField(allow_blank=True, trim_whitespace=False),
        write_only=True,
        required=False,
        help_text="Secret values to set (an empty value removes the secret). Never returned.",
    )
    secret_names = serializers.ListField(
        child=serializers.CharField(), read_only=True, help_text="Names of the secrets that are set."
    )
    attention = serializers.CharField(
        read_only=True, help_text="Why the instance needs attention (unresolved records only); empty when it does not."
    )
    attention_records = AttentionSerializer(source="unresolved_attention", many=True, read_only=True)
    drift = serializers.SerializerMethodField(help_text="The latest drift report's finding; null: never checked.")

    @extend_schema_field(DriftSerializer(allow_null=True))
    def get_drift(self, instance: Instance) -> dict | None:
        if hasattr(instance, "drift_state"):  # the list and detail annotate it (annotate_drift)
            state, kind, files = instance.drift_state, instance.drift_kind, instance.drift_files
        else:
            latest = InstanceDrift.objects.filter(instance=instance).order_by("-report_id").first()
            state, kind, files = (latest.state, latest.kind, latest.files) if latest else (None, "", [])
        return None if state is None else {"state": state, "kind": kind or "", "files": files or []}

    class Meta:
        model = Instance
        fields = [
            "id",
            "name",
            "slug",
            "node",
            "install_dir",
            "compose_project",
            "image_tag",
            "is_registered",
            "domain",
            "ports",
            "profiles",
            "protected_paths",
            "health_urls",
            "upgrade_script",
            "backup_enabled",
            "status",
            "secrets",
            "secret_names",
            "observed_version",
            "health",
            "health_checked_at",
            "attention",
            "attention_records",
            "drift",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["observed_version", "health", "health_checked_at", "attention", "created_at", "updated_at"]
        # Uniqueness and cross-field checks run in the model (full_clean in the service), one place.
        validators = []


# --- render and preview (output of instances.selectors; already redacted) ---------------------------


class ReleaseQuerySerializer(serializers.Serializer):
    release = serializers.CharField(
        required=False, allow_blank=True, max_length=64, help_text="Release version; empty: the fleet default release."
    )


class RenderedFileSerializer(serializers.Serializer):
    path = serializers.CharField(help_text="Path relative to the install directory.")
    mode = serializers.CharField(source="mode_octal", help_text="File mode in octal, e.g. 0644.")
    content = serializers.CharField(help_text="Text; secret values are [redacted] unless secrets_redacted is false.")


class InstanceRenderSerializer(serializers.Serializer):
    instance = serializers.CharField(source="instance.slug")
    release = serializers.CharField(source="release.version")
    template_set = serializers.CharField()
    secrets_redacted = serializers.BooleanField(
        help_text="False only for users with the instances.reveal_secrets permission."
    )
    secrets_to_generate = serializers.ListField(
        child=serializers.CharField(),
        help_text="Secrets this instance does not have yet: rendered as placeholders (will be generated by the "
        "release upgrade, or by generate-secrets).",
    )
    files = RenderedFileSerializer(many=True)


class PreviewFileSerializer(serializers.Serializer):
    path = serializers.CharField()
    status = serializers.CharField(
        help_text="unchanged, changed, new (not managed before) or missing (managed, but absent on the node)."
    )
    kind = serializers.CharField(
        help_text="none, values-only (same keys, other values) or structural "
        "(keys or services added or removed, or a file created)."
    )
    diff = serializers.CharField(help_text="Unified diff, node → render; secret values redacted.")


class CoverageSerializer(serializers.Serializer):
    required_missing = serializers.ListField(
        child=serializers.CharField(),
        source="coverage.required_missing",
        help_text="Needed by the compose file without a default, not in .env.",
    )
    defaulted_missing = serializers.ListField(
        child=serializers.CharField(),
        source="coverage.defaulted_missing",
        help_text="Not in .env; the compose file's default applies.",
    )
    notes = serializers.ListField(
        child=serializers.CharField(), source="note_texts", help_text="The same in sentences."
    )


class InstancePreviewSerializer(serializers.Serializer):
    instance = serializers.CharField(source="instance.slug")
    release = serializers.CharField(source="release.version")
    template_set = serializers.CharField()
    has_changes = serializers.BooleanField()
    kind = serializers.CharField(help_text="The strongest change: none, values-only or structural.")
    files = PreviewFileSerializer(many=True)
    orphaned = serializers.ListField(
        child=serializers.CharField(), help_text="Managed before, no longer rendered; left in place."
    )
    coverage = CoverageSerializer(source="*")
    blocked = serializers.BooleanField()
    blocked_reason = serializers.CharField()
    preview_hash = serializers.CharField(help_text="Approve an upgrade to this release with this hash.")
    secrets_to_generate = serializers.ListField(
        child=serializers.CharField(),
        help_text="Secrets that will be generated: this instance has none yet, the preview shows placeholders "
        "and the upgrade generates them before writing (the hash covers the placeholders).",
    )


class GeneratedSecretsSerializer(serializers.Serializer):
    generated = serializers.ListField(
        child=serializers.CharField(), help_text="Names of the secrets generated now (never their values)."
    )
