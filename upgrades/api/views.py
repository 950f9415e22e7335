from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from ccp.api.permissions import operation_permission
from ccp.api.viewsets import AuditedModelViewSet
from upgrades import services
from upgrades.models import Release, Upgrade
from upgrades.selectors import upgrades_with_steps

from .filtersets import UpgradeFilterSet
from .serializers import ReleaseSerializer, UpgradeListSerializer, UpgradeSerializer


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
        serializer.instance = services.release_save(
            release=release, user=self.request.user, changed_fields=changed_fields
        )


class UpgradeViewSet(viewsets.ReadOnlyModelViewSet):
    """Upgrades with their steps (the live log). Start one with POST /api/v1/instances/{slug}/upgrades/."""

    queryset = Upgrade.objects.select_related("instance", "release", "requested_by")
    serializer_class = UpgradeSerializer
    filterset_class = UpgradeFilterSet
    ordering_fields = ["created_at", "finished_at"]

    def paginate_queryset(self, queryset):
        # One query for the steps of the whole page; the list shows them without their output, so it
        # is not even read from the database.
        page = super().paginate_queryset(queryset)
        return upgrades_with_steps(page, with_output=False) if page is not None else None

    def get_serializer_class(self):
        return UpgradeListSerializer if self.action == "list" else UpgradeSerializer

    @extend_schema(request=None, responses={202: UpgradeSerializer})
    @action(detail=True, methods=["post"], permission_classes=[operation_permission("upgrades.cancel_upgrade")])
    def cancel(self, request, pk=None):
        upgrade = services.upgrade_cancel(upgrade=self.get_object(), user=request.user)
        return Response(self.get_serializer(upgrade).data, status=status.HTTP_202_ACCEPTED)
