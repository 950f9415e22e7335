from rest_framework import serializers

from upgrades.models import Release


class ReleaseSerializer(serializers.ModelSerializer):
    class Meta:
        model = Release
        fields = ["id", "version", "image_tag", "template_set", "registry", "is_default", "notes", "created_at"]
        read_only_fields = ["created_at"]
        validators = []
