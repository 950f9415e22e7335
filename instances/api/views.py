"""API viewsets for nodes and instances."""

from ccp.api.viewsets import AuditedModelViewSet
from instances import services
from instances.models import Instance, Node

from .filtersets import InstanceFilterSet, NodeFilterSet
from .serializers import InstanceSerializer, NodeSerializer


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
        serializer.instance = services.node_save(node=node, user=self.request.user, private_key=private_key,
                                                 changed_fields=changed_fields)


class InstanceViewSet(AuditedModelViewSet):
    queryset = Instance.objects.select_related("node")
    serializer_class = InstanceSerializer
    lookup_field = "slug"
    filterset_class = InstanceFilterSet
    search_fields = ["name", "slug", "domain"]
    ordering_fields = ["slug", "name", "created_at"]

    def save(self, serializer, changed_fields: list[str]) -> None:
        data = dict(serializer.validated_data)
        secret_values = data.pop("secrets", None)
        instance = serializer.instance or Instance()
        for field, value in data.items():
            setattr(instance, field, value)
        serializer.instance = services.instance_save(instance=instance, user=self.request.user,
                                                     secret_values=secret_values, changed_fields=changed_fields)
