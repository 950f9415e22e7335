"""API viewsets for nodes and instances."""

from drf_spectacular.utils import extend_schema
from rest_framework.decorators import action
from rest_framework.response import Response

from ccp.api.permissions import operation_permission
from ccp.api.responses import accepted
from ccp.api.viewsets import AuditedModelViewSet
from instances import selectors, services
from instances.attention import attention_acknowledge
from instances.drift.selectors import annotate_drift
from instances.health import instance_check_health
from instances.models import Instance, Node
from instances.node_checks import FingerprintConfirmationNeeded, node_check, node_repin_host_key
from instances.preview import release_or_default
from upgrades.api.serializers import UpgradeRequestSerializer, UpgradeSerializer
from upgrades.services import upgrade_request

from .backup_serializers import BackupRequestSerializer, BackupSerializer
from .backup_views import instance_backup_create
from .filtersets import InstanceFilterSet, NodeFilterSet
from .serializers import (
    AcknowledgeSerializer,
    GeneratedSecretsSerializer,
    InstancePreviewSerializer,
    InstanceRenderSerializer,
    InstanceSerializer,
    NodeSerializer,
    ReleaseQuerySerializer,
    RepinRequestSerializer,
)


class NodeViewSet(AuditedModelViewSet):
    queryset = Node.objects.all()
    serializer_class = NodeSerializer
    lookup_field = "name"
    filterset_class = NodeFilterSet
    search_fields = ["name", "address"]
    ordering_fields = ["name", "checked_at"]

    def save(self, serializer, changed_fields: list[str]) -> None:
        data = dict(serializer.validated_data)
        private_key = data.pop("private_key", None)
        node = serializer.instance or Node()
        for field, value in data.items():
            setattr(node, field, value)
        serializer.instance = services.node_save(
            node=node, user=self.request.user, private_key=private_key, changed_fields=changed_fields
        )

    @extend_schema(request=None, responses={200: NodeSerializer})
    @action(detail=True, methods=["post"], permission_classes=[operation_permission("instances.operate_node")])
    def check(self, request, name=None):
        """Connect now (pinning the host key on first contact); record and return docker/compose versions."""
        node = node_check(node=self.get_object(), user=request.user)
        return Response(self.get_serializer(node).data)

    @extend_schema(request=RepinRequestSerializer, responses={200: NodeSerializer})
    @action(
        detail=True,
        methods=["post"],
        url_path="repin-host-key",
        permission_classes=[operation_permission("instances.operate_node")],
    )
    def repin_host_key(self, request, name=None):
        """Trust the host key the node presents now if it is `fingerprint` (checked out of band); audited.
        Without `fingerprint`: 400 naming the presented one in `presented_fingerprint`. Another key: 409."""
        data = RepinRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            node = node_repin_host_key(
                node=self.get_object(),
                user=request.user,
                expected_fingerprint=data.validated_data.get("fingerprint", ""),
            )
        except FingerprintConfirmationNeeded as exc:
            return Response(
                {"detail": exc.message, "presented_fingerprint": exc.presented_fingerprint}, status=exc.http_status
            )
        return Response(self.get_serializer(node).data)


class InstanceViewSet(AuditedModelViewSet):
    queryset = annotate_drift(selectors.with_open_attention(Instance.objects.select_related("node")))
    serializer_class = InstanceSerializer
    lookup_field = "slug"
    filterset_class = InstanceFilterSet
    search_fields = ["name", "slug", "domain"]
    ordering_fields = ["slug", "name", "created_at"]

    @extend_schema(parameters=[ReleaseQuerySerializer], responses={200: InstanceRenderSerializer})
    @action(detail=True, methods=["get"], url_path="render", url_name="render")
    def render_files(self, request, slug=None):
        """The files a release renders for this instance. Secret values are [redacted] unless the user
        has instances.reveal_secrets."""
        query = ReleaseQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        shown = selectors.instance_render_for(
            instance=self.get_object(), user=request.user, release=query.validated_data.get("release", "")
        )
        return Response(InstanceRenderSerializer(shown).data)

    @extend_schema(parameters=[ReleaseQuerySerializer], responses={200: InstancePreviewSerializer})
    @action(detail=True, methods=["get"])
    def preview(self, request, slug=None):
        """Compare a release's render with the files on the node: per-file status and redacted diff,
        values-only or structural, env coverage, whether the upgrade is blocked, and the preview hash
        an upgrade to this release is approved with."""
        query = ReleaseQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        report = selectors.instance_preview_report(
            instance=self.get_object(), release=query.validated_data.get("release", "")
        )
        return Response(InstancePreviewSerializer(report).data)

    @extend_schema(parameters=[ReleaseQuerySerializer], request=None, responses={200: GeneratedSecretsSerializer})
    @action(
        detail=True,
        methods=["post"],
        url_path="generate-secrets",
        permission_classes=[operation_permission("instances.operate_instance")],
    )
    def generate_secrets(self, request, slug=None):
        """Generate the secrets a release's template set needs and this provisioned instance lacks (the
        ones a preview lists as "will be generated"). Audited; answers their names, never values."""
        query = ReleaseQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        names = services.instance_generate_missing_secrets(
            instance=self.get_object(),
            release=release_or_default(query.validated_data.get("release", "")),
            user=request.user,
            reason="operator action via API",
        )
        return Response(GeneratedSecretsSerializer({"generated": names}).data)

    def save(self, serializer, changed_fields: list[str]) -> None:
        data = dict(serializer.validated_data)
        secret_values = data.pop("secrets", None)
        instance = serializer.instance or Instance()
        for field, value in data.items():
            setattr(instance, field, value)
        serializer.instance = services.instance_save(
            instance=instance, user=self.request.user, secret_values=secret_values, changed_fields=changed_fields
        )

    @extend_schema(request=None, responses={200: InstanceSerializer})
    @action(
        detail=True,
        methods=["post"],
        url_path="check-health",
        permission_classes=[operation_permission("instances.operate_instance")],
    )
    def check_health(self, request, slug=None):
        """Probe the health URLs from the node once and record health and the running version."""
        instance = self.get_object()
        instance_check_health(instance=instance)
        instance.refresh_from_db()
        return Response(self.get_serializer(instance).data)

    @extend_schema(request=AcknowledgeSerializer, responses={200: InstanceSerializer})
    @action(
        detail=True,
        methods=["post"],
        url_path="acknowledge",
        permission_classes=[operation_permission("instances.operate_instance")],
    )
    def acknowledge(self, request, slug=None):
        """Resolve the instance's open attention records with a note (audited); 400 when there are none."""
        instance = self.get_object()
        data = AcknowledgeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        attention_acknowledge(instance=instance, user=request.user, note=data.validated_data["note"])
        return Response(self.get_serializer(self.get_queryset().get(pk=instance.pk)).data)

    @extend_schema(request=UpgradeRequestSerializer, responses={202: UpgradeSerializer})
    @action(
        detail=True,
        methods=["post"],
        url_path="upgrades",
        permission_classes=[operation_permission("instances.operate_instance")],
    )
    def upgrades(self, request, slug=None):
        """Start an upgrade: 202 with the upgrade's URL; 409 when another operation runs on the instance."""
        instance = self.get_object()
        data = UpgradeRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upgrade = upgrade_request(
            instance=instance,
            user=request.user,
            mode=data.validated_data["mode"],
            image_tag=data.validated_data.get("image_tag", ""),
            release=data.validated_data.get("release"),
            preview_hash=data.validated_data.get("preview_hash", ""),
        )
        body = UpgradeSerializer(upgrade, context=self.get_serializer_context()).data
        return accepted(body)

    @extend_schema(request=BackupRequestSerializer, responses={202: BackupSerializer})
    @action(
        detail=True,
        methods=["post"],
        url_path="backups",
        permission_classes=[operation_permission("instances.operate_instance")],
    )
    def backups(self, request, slug=None):
        """Back up now (label defaults to manual): 202 with the backup's URL; 409 when the instance is busy."""
        return instance_backup_create(self, request, self.get_object())
