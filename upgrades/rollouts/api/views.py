from drf_spectacular.utils import extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from ccp.api.permissions import operation_permission
from ccp.api.responses import accepted

from .. import services
from ..models import Rollout
from ..selectors import instances_for_rollout
from .serializers import RolloutListSerializer, RolloutRequestSerializer, RolloutSerializer, RolloutTargetSerializer

OPERATE = operation_permission("upgrades.operate_rollout")


class RolloutViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Rollouts: one target taken to many instances, canary first, then in waves (README "Rollouts")."""

    queryset = Rollout.objects.select_related("release", "created_by").prefetch_related(
        "items__instance__node", "items__upgrade"
    )
    serializer_class = RolloutSerializer
    filterset_fields = ["status", "mode"]
    ordering_fields = ["created_at", "finished_at"]

    def get_permissions(self):
        if self.action == "create":
            return [OPERATE()]
        return super().get_permissions()

    def get_serializer_class(self):
        return RolloutListSerializer if self.action == "list" else RolloutSerializer

    @extend_schema(request=RolloutRequestSerializer, responses={202: RolloutSerializer})
    def create(self, request):
        """Start a rollout: 202 with its URL. Release rollouts preview every instance first (nodes in
        parallel); instances whose preview is blocked are listed in `items` as excluded, with the reason."""
        data = RolloutRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        instances = list(
            instances_for_rollout(
                slugs=values.get("instances"),
                node=values.get("node", ""),
                tag=values.get("tag", ""),
                status=values.get("status", ""),
                search=values.get("search", ""),
            )
        )
        hashes = values.get("preview_hashes")
        rollout = services.rollout_create(
            instances=instances,
            mode=values["mode"],
            user=request.user,
            release=values.get("release"),
            image_tag=values.get("image_tag", ""),
            canary_size=values["canary_size"],
            waves=values["waves"],
            parallelism=values["parallelism"],
            per_node_limit=values.get("per_node_limit"),
            failure_budget=values["failure_budget"],
            start_at=values.get("start_at"),
            approved_hashes=None if hashes is None else {i.pk: hashes.get(i.slug, "") for i in instances},
        )
        return accepted(self._shown(rollout))

    def _shown(self, rollout: Rollout) -> dict:
        return RolloutSerializer(self.get_queryset().get(pk=rollout.pk), context=self.get_serializer_context()).data

    @extend_schema(request=None, responses={200: RolloutSerializer})
    @action(detail=True, methods=["post"], permission_classes=[OPERATE])
    def halt(self, request, pk=None):
        """Start no further upgrade; the running ones finish."""
        return Response(self._shown(services.rollout_halt(rollout=self.get_object(), user=request.user)))

    @extend_schema(request=RolloutTargetSerializer, responses={202: RolloutSerializer})
    @action(detail=True, methods=["post"], permission_classes=[OPERATE])
    def resume(self, request, pk=None):
        """Go on with the instances not done, optionally with a new target (image_tag or release)."""
        data = RolloutTargetSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        rollout = services.rollout_resume(
            rollout=self.get_object(),
            user=request.user,
            image_tag=data.validated_data.get("image_tag", ""),
            release=data.validated_data.get("release"),
        )
        return accepted(self._shown(rollout))

    @extend_schema(request=None, responses={200: RolloutSerializer})
    @action(detail=True, methods=["post"], permission_classes=[OPERATE])
    def cancel(self, request, pk=None):
        """No further upgrade starts; the running ones finish."""
        return Response(self._shown(services.rollout_cancel(rollout=self.get_object(), user=request.user)))
