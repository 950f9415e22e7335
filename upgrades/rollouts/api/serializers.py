from rest_framework import serializers

from instances.choices import InstanceStatus
from instances.validators import IMAGE_TAG_RE
from upgrades.choices import UpgradeMode
from upgrades.models import Release

from ..models import Rollout, RolloutItem
from ..selectors import item_current_step

# Counts beyond any fleet (and within the database's integer columns).
MAX_COUNT = 100_000


class RolloutItemSerializer(serializers.ModelSerializer):
    instance = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    node = serializers.CharField(source="instance.node.name", read_only=True)
    upgrade = serializers.PrimaryKeyRelatedField(read_only=True)
    current_step = serializers.SerializerMethodField()

    class Meta:
        model = RolloutItem
        fields = [
            "instance",
            "node",
            "wave",
            "position",
            "status",
            "upgrade",
            "current_step",
            "attempts",
            "from_version",
            "approved_preview_hash",
            "preview_summary",
            "error",
            "started_at",
            "finished_at",
        ]

    def get_current_step(self, item) -> str:
        return item_current_step(item)


class RolloutSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="rollout-detail")
    release = serializers.SlugRelatedField(slug_field="version", read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    per_node_limit = serializers.IntegerField(source="effective_per_node_limit", read_only=True)
    items = RolloutItemSerializer(many=True, read_only=True)

    class Meta:
        model = Rollout
        fields = [
            "id",
            "url",
            "mode",
            "release",
            "image_tag",
            "canary_size",
            "waves",
            "parallelism",
            "per_node_limit",
            "failure_budget",
            "start_at",
            "status",
            "current_wave",
            "reason",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
            "items",
        ]


class RolloutListSerializer(RolloutSerializer):
    class Meta(RolloutSerializer.Meta):
        fields = [f for f in RolloutSerializer.Meta.fields if f != "items"]


class RolloutTargetSerializer(serializers.Serializer):
    image_tag = serializers.RegexField(
        IMAGE_TAG_RE, required=False, allow_blank=True, help_text="Target tag (image_only; or full mode's version)."
    )
    release = serializers.SlugRelatedField(
        slug_field="version",
        queryset=Release.objects.all(),
        required=False,
        allow_null=True,
        help_text="Release version (release and full modes).",
    )


class RolloutRequestSerializer(RolloutTargetSerializer):
    """What a client sends to start a rollout: the target, the instances (slugs and/or filters) and the plan."""

    mode = serializers.ChoiceField(choices=UpgradeMode.choices)
    instances = serializers.ListField(
        child=serializers.SlugField(), required=False, help_text="Instance slugs (combined with the filters)."
    )
    node = serializers.CharField(required=False, allow_blank=True, help_text="Filter: node name.")
    tag = serializers.RegexField(IMAGE_TAG_RE, required=False, allow_blank=True, help_text="Filter: image tag.")
    status = serializers.ChoiceField(choices=InstanceStatus.choices, required=False, help_text="Filter: status.")
    search = serializers.CharField(required=False, allow_blank=True, max_length=100, help_text="Filter: search.")
    canary_size = serializers.IntegerField(min_value=0, max_value=MAX_COUNT, default=1)
    waves = serializers.CharField(default="rest", max_length=200, help_text='e.g. "1,10%,50%,rest".')
    parallelism = serializers.IntegerField(min_value=0, max_value=MAX_COUNT, default=0)
    per_node_limit = serializers.IntegerField(min_value=1, max_value=MAX_COUNT, required=False, allow_null=True)
    failure_budget = serializers.IntegerField(min_value=0, max_value=MAX_COUNT, default=0)
    start_at = serializers.DateTimeField(required=False, allow_null=True)
    preview_hashes = serializers.DictField(
        child=serializers.CharField(max_length=64),
        required=False,
        help_text="Release mode: instance slug → the preview hash the operator approved. Omitted: the "
        "previews computed when the rollout is created are the approved ones.",
    )

    def validate(self, attrs):
        if not any(attrs.get(key) for key in ("instances", "node", "tag", "status", "search")):
            raise serializers.ValidationError(
                {"instances": "Name the instances (slugs) or filter them (node, tag, status, search)."}
            )
        return attrs
