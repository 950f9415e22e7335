from ccp.api.viewsets import AuditedModelViewSet
from upgrades import services
from upgrades.models import Release

from .serializers import ReleaseSerializer


class ReleaseViewSet(AuditedModelViewSet):
    queryset = Release.objects.all()
    serializer_class = ReleaseSerializer
    lookup_field = "version"
    lookup_value_regex = r"[^/]+"
    filterset_fields = ["template_set", "is_default"]
    search_fields = ["version", "image_tag", "notes"]

    def save(self, serializer, changed_fields: list[str]) -> None:
        release = serializer.instance or Release()
        for field, value in serializer.validated_data.items():
            setattr(release, field, value)
        serializer.instance = services.release_save(release=release, user=self.request.user,
                                                    changed_fields=changed_fields)
