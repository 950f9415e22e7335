"""Input and output serializers for nodes and instances. Secret values are write-only."""

from rest_framework import serializers

from instances.models import Instance, Node


class NodeSerializer(serializers.ModelSerializer):
    private_key = serializers.CharField(write_only=True, required=False, allow_blank=True, trim_whitespace=False,
                                        style={"base_template": "textarea.html"},
                                        help_text="OpenSSH/PEM private key; stored encrypted, never returned.")
    has_private_key = serializers.BooleanField(read_only=True)

    class Meta:
        model = Node
        fields = [
            "id", "name", "address", "ssh_port", "ssh_user", "driver", "ssh_key_path", "private_key",
            "has_private_key", "instance_root", "registry_access",
            "host_key_type", "host_key_fingerprint", "host_key_pinned_at",
            "docker_version", "compose_version", "disk_free_bytes", "checked_at", "check_ok", "check_error",
            "created_at", "updated_at",
        ]
        read_only_fields = [
            "host_key_type", "host_key_fingerprint", "host_key_pinned_at", "docker_version", "compose_version",
            "disk_free_bytes", "checked_at", "check_ok", "check_error", "created_at", "updated_at",
        ]


class InstanceSerializer(serializers.ModelSerializer):
    node = serializers.SlugRelatedField(slug_field="name", queryset=Node.objects.all())
    compose_project = serializers.CharField(required=False, allow_blank=True, max_length=63)
    secrets = serializers.DictField(
        child=serializers.CharField(allow_blank=True, trim_whitespace=False), write_only=True, required=False,
        help_text="Secret values to set (an empty value removes the secret). Never returned.")
    secret_names = serializers.ListField(child=serializers.CharField(), read_only=True,
                                         help_text="Names of the secrets that are set.")

    class Meta:
        model = Instance
        fields = [
            "id", "name", "slug", "node", "install_dir", "compose_project", "image_tag", "is_registered",
            "domain", "ports", "profiles", "protected_paths", "health_urls", "upgrade_script", "backup_enabled",
            "status", "secrets", "secret_names", "observed_version", "health", "health_checked_at", "attention",
            "created_at", "updated_at",
        ]
        read_only_fields = ["observed_version", "health", "health_checked_at", "attention",
                            "created_at", "updated_at"]
        # Uniqueness and cross-field checks run in the model (full_clean in the service), one place.
        validators = []
