"""API for backups: list and read them, verify one, restore one. Start one with
POST /api/v1/instances/{slug}/backups/ (InstanceViewSet.backups)."""

from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from ccp.api.permissions import operation_permission
from ccp.api.responses import accepted
from ccp.errors import CCPError
from instances.backups.restore import backup_restore_request, restore_cancel, restore_targets
from instances.backups.services import backup_cancel, backup_request, backup_verify
from instances.choices import RestoreStatus
from instances.models import Backup, Restore

from .backup_filtersets import BackupFilterSet
from .backup_serializers import BackupRequestSerializer, BackupSerializer, RestoreRequestSerializer


class BackupViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Backup.objects.select_related("instance__node", "requested_by").prefetch_related(
        Prefetch("restores", queryset=Restore.objects.select_related("requested_by").order_by("-created_at"))
    )
    serializer_class = BackupSerializer
    filterset_class = BackupFilterSet
    search_fields = ["instance__slug", "location"]
    ordering_fields = ["created_at", "size_bytes"]

    @extend_schema(request=None, responses={200: BackupSerializer})
    @action(detail=True, methods=["post"], permission_classes=[operation_permission("instances.operate_instance")])
    def verify(self, request, pk=None):
        """Re-hash every file against MANIFEST.txt now; verify_ok / verify_error name any bad file."""
        backup = backup_verify(backup=self.get_object(), user=request.user)
        return Response(self.get_serializer(backup).data)

    @extend_schema(request=None, responses={200: BackupSerializer})
    @action(detail=True, methods=["post"], permission_classes=[operation_permission("instances.operate_instance")])
    def cancel(self, request, pk=None):
        """Cancel this backup if it has not started yet (400 otherwise); its instance is free again."""
        backup = backup_cancel(backup=self.get_object(), user=request.user)
        return Response(self.get_serializer(self.get_queryset().get(pk=backup.pk)).data)

    @extend_schema(request=None, responses={200: BackupSerializer})
    @action(
        detail=True,
        methods=["post"],
        url_path="cancel-restore",
        permission_classes=[operation_permission("instances.restore_backup")],
    )
    def cancel_restore(self, request, pk=None):
        """Cancel the restore of this backup that has not started yet (400 when there is none)."""
        backup = self.get_object()
        pending = backup.restores.filter(status=RestoreStatus.PENDING).order_by("-created_at").first()
        if pending is None:
            raise CCPError(f"Backup #{backup.pk} has no pending restore to cancel.")
        restore_cancel(restore=pending, user=request.user)
        return Response(self.get_serializer(self.get_queryset().get(pk=backup.pk)).data)

    @extend_schema(request=RestoreRequestSerializer, responses={202: BackupSerializer})
    @action(detail=True, methods=["post"], permission_classes=[operation_permission("instances.restore_backup")])
    def restore(self, request, pk=None):
        """Put this backup back on its instance (overwriting mkdocs/, configs/, nginx/ and the config files
        it holds). Send {"confirm": true}; without it, 400 lists what would be overwritten. 202 with the
        backup's URL (its `restores` show progress); 409 when another operation runs on the instance."""
        backup = self.get_object()
        data = RestoreRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if not data.validated_data["confirm"]:
            targets = restore_targets(backup)
            return Response(
                {
                    "detail": f"Restoring backup #{backup.pk} overwrites these paths in "
                    f"{backup.instance.install_dir} on node {backup.instance.node}: "
                    f"{', '.join(targets)}. Send confirm=true to go ahead.",
                    "will_overwrite": targets,
                },
                status=status.HTTP_400_BAD_REQUEST,
            )
        backup_restore_request(backup=backup, user=request.user)
        body = self.get_serializer(self.get_queryset().get(pk=backup.pk)).data
        return accepted(body)


def instance_backup_create(view, request, instance) -> Response:
    """POST /api/v1/instances/{slug}/backups/ (mounted on InstanceViewSet): 202 with the backup's URL."""
    data = BackupRequestSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    backup = backup_request(instance=instance, label=data.validated_data["label"], user=request.user)
    body = BackupSerializer(backup, context=view.get_serializer_context()).data
    return accepted(body)
