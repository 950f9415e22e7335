"""GET …/<kind>s/{id}/progress/: how far a long operation got, for the admin page that polls it and for API
clients. The same answer for every kind (upgrade and deploy, backup, restore): see
instances.operations.progress."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, serializers
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from instances.operations.progress import OUTPUT_TAIL, operation_progress, source_of

DEFAULT_TAIL = 4000


class StepProgressSerializer(serializers.Serializer):
    position = serializers.IntegerField()
    key = serializers.CharField(help_text="Stable: what a client matches on (labels may change).")
    label = serializers.CharField()
    is_rollback = serializers.BooleanField()
    status = serializers.CharField()
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    duration_seconds = serializers.FloatField(allow_null=True)
    elapsed_seconds = serializers.FloatField(allow_null=True, help_text="So far, while it runs.")
    output = serializers.CharField(
        allow_blank=True, help_text="The tail of its output (secrets redacted), or what is new since `since`."
    )
    output_offset = serializers.IntegerField(help_text="Characters written to its output so far.")
    output_since = serializers.IntegerField(
        allow_null=True, help_text="Set when `output` starts at the offset the client sent."
    )
    bytes_done = serializers.IntegerField(allow_null=True)
    bytes_total = serializers.IntegerField(allow_null=True)


class ProgressSerializer(serializers.Serializer):
    kind = serializers.CharField()
    id = serializers.IntegerField()
    status = serializers.CharField()
    is_final = serializers.BooleanField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    elapsed_seconds = serializers.FloatField(allow_null=True)
    step_number = serializers.IntegerField(help_text="Step N (of step_total) that runs, or ran last.")
    step_total = serializers.IntegerField(allow_null=True, help_text="None when not known before it runs.")
    current_step = serializers.CharField(allow_null=True, help_text="The key of the running (or last) step.")
    steps = StepProgressSerializer(many=True)


class OperationProgressView(APIView):
    """Whoever may view the operation may read its progress."""

    kind = ""
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        responses={200: ProgressSerializer},
        parameters=[
            OpenApiParameter(
                "since",
                int,
                description="The last step's output_offset you saw: that step returns only its newer output.",
            ),
            OpenApiParameter("tail", int, description=f"Characters of each step's output (default {DEFAULT_TAIL})."),
        ],
    )
    def get(self, request, pk: int):
        source = source_of(self.kind)
        if not request.user.has_perm(source.view_permission):
            raise PermissionDenied()
        row = get_object_or_404(source.model, pk=pk)
        payload = operation_progress(
            kind=self.kind,
            row=row,
            tail=_int(request.query_params.get("tail"), DEFAULT_TAIL, upper=OUTPUT_TAIL),
            since=_int(request.query_params.get("since"), None),
        )
        return Response(ProgressSerializer(payload).data)


def _int(value: str | None, default, *, upper: int | None = None):
    """A non-negative integer query parameter; anything else reads as the default."""
    if value is None or not value.isdigit():
        return default
    number = int(value)
    return min(number, upper) if upper is not None else number
