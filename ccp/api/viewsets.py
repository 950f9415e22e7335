"""A model viewset whose writes go through a service function and are recorded in the audit log."""

from rest_framework import viewsets

from ccp.deletion import object_delete


class AuditedModelViewSet(viewsets.ModelViewSet):
    """Subclasses implement `save(serializer, changed_fields)` by calling their service."""

    def perform_create(self, serializer) -> None:
        self.save(serializer, changed_fields=[])

    def perform_update(self, serializer) -> None:
        self.save(serializer, changed_fields=sorted(serializer.validated_data))

    def perform_destroy(self, instance) -> None:
        object_delete(obj=instance, user=self.request.user)

    def save(self, serializer, changed_fields: list[str]) -> None:
        raise NotImplementedError
