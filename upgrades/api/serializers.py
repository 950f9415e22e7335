from rest_framework import serializers

from instances.operations.models import OperationStep
from instances.validators import IMAGE_TAG_RE
from upgrades.choices import UpgradeMode
from upgrades.models import Release, Upgrade


class ReleaseSerializer(serializers.ModelSerializer):
    class Meta:
        model = Release
        fields = ["id", "version", "image_tag", "template_set", "registry", "is_default", "notes", "created_at"]
        read_only_fields = ["created_at"]
        validators = []


class UpgradeStepSummarySerializer(serializers.ModelSerializer):
    """A step as the upgrade list shows it: key, label (`name`), status and timing. Its output is on the detail."""

    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)

    class Meta:
        model = OperationStep
        fields = ["position", "key", "name", "is_rollback", "status", "started_at", "finished_at", "duration_seconds"]


class UpgradeStepSerializer(UpgradeStepSummarySerializer):
    class Meta(UpgradeStepSummarySerializer.Meta):
        fields = [*UpgradeStepSummarySerializer.Meta.fields, "output"]


class UpgradeSerializer(serializers.ModelSerializer):
    instance = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    release = serializers.SlugRelatedField(slug_field="version", read_only=True)
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)
    steps = UpgradeStepSerializer(many=True, read_only=True, source="step_list")
    url = serializers.HyperlinkedIdentityField(view_name="upgrade-detail")
    kind = serializers.CharField(
        source="kind_display",
        read_only=True,
        help_text='What it is in the operator\'s words: "Deploy" for a first deploy, else the mode.',
    )

    class Meta:
        model = Upgrade
        fields = [
            "id",
            "url",
            "instance",
            "kind",
            "mode",
            "is_first_deploy",
            "release",
            "from_version",
            "to_version",
            "target_tag",
            "status",
            "requested_by",
            "task_id",
            "approved_preview_hash",
            "cancel_requested",
            "error",
            "created_at",
            "started_at",
            "finished_at",
            "duration_seconds",
            "steps",
        ]


class UpgradeListSerializer(UpgradeSerializer):
    """The list: every step's output (up to 16 kB each) would make a page megabytes long."""

    steps = UpgradeStepSummarySerializer(many=True, read_only=True, source="step_list")


class UpgradeRequestSerializer(serializers.Serializer):
    """What a client sends to start an upgrade."""

    mode = serializers.ChoiceField(choices=UpgradeMode.choices)
    image_tag = serializers.RegexField(
        IMAGE_TAG_RE,
        required=False,
        allow_blank=True,
        help_text="Target tag (image_only; or the version passed to a full upgrade).",
    )
    release = serializers.SlugRelatedField(
        slug_field="version",
        queryset=Release.objects.all(),
        required=False,
        allow_null=True,
        help_text="Release version (release and full modes).",
    )
    preview_hash = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=64,
        help_text="The preview hash the operator approved (release mode).",
    )

    def validate(self, attrs):
        mode = attrs["mode"]
        if mode == UpgradeMode.IMAGE_ONLY and not attrs.get("image_tag"):
            raise serializers.ValidationError({"image_tag": "A Quick upgrade needs the target image tag."})
        if mode == UpgradeMode.RELEASE:
            if not attrs.get("release"):
                raise serializers.ValidationError({"release": "Name the release to upgrade to."})
            if not attrs.get("preview_hash"):
                raise serializers.ValidationError(
                    {"preview_hash": "Preview first (GET …/preview/?release=) and send the preview_hash you approved."}
                )
        if mode == UpgradeMode.FULL and not (attrs.get("release") or attrs.get("image_tag")):
            raise serializers.ValidationError({"image_tag": "A full upgrade needs a release or an image tag."})
        return attrs
