"""Output and input serializers for backups and restores."""

from rest_framework import serializers

from instances.choices import BackupLabel
from instances.models import Backup, Restore


class RestoreSerializer(serializers.ModelSerializer):
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Restore
        fields = [
            "id",
            "status",
            "source",
            "requested_by",
            "task_id",
            "log",
            "error",
            "created_at",
            "started_at",
            "finished_at",
        ]


class BackupSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="backup-detail")
    instance = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    node = serializers.CharField(source="instance.node.name", read_only=True)
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    restores = RestoreSerializer(many=True, read_only=True, help_text="Restores of this backup, newest first.")

    class Meta:
        model = Backup
        fields = [
            "id",
            "url",
            "instance",
            "node",
            "label",
            "status",
            "location",
            "size_bytes",
            "manifest",
            "requested_by",
            "task_id",
            "error",
            "created_at",
            "started_at",
            "finished_at",
            "verified_at",
            "verify_ok",
            "verify_error",
            "restores",
        ]


class BackupRequestSerializer(serializers.Serializer):
    """What a client sends to back an instance up now."""

    label = serializers.ChoiceField(choices=BackupLabel.choices, default=BackupLabel.MANUAL)


class RestoreRequestSerializer(serializers.Serializer):
    confirm = serializers.BooleanField(
        default=False, help_text="Must be true. Without it the answer is 400 listing what the restore would overwrite."
    )
