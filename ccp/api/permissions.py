"""API permissions: Django model permissions (view included) plus the operation permissions."""

from django.conf import settings
from rest_framework import permissions


class ModelPermissions(permissions.DjangoModelPermissions):
    """DjangoModelPermissions that also require the view permission to read."""

    perms_map = {
        **permissions.DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
    }


def operation_permission(perm: str) -> type[permissions.BasePermission]:
    """A permission class requiring one named permission, e.g. 'instances.operate_instance'."""

    class HasOperationPermission(permissions.IsAuthenticated):
        def has_permission(self, request, view) -> bool:
            return super().has_permission(request, view) and request.user.has_perm(perm)

    HasOperationPermission.__name__ = f"Has_{perm.replace('.', '_')}"
    return HasOperationPermission


class SchemaAccess(permissions.BasePermission):
    """The OpenAPI schema and docs: signed-in users only, unless CCP_PUBLIC_SCHEMA is on (read per request,
    so the setting can change without a code change)."""

    def has_permission(self, request, view) -> bool:
        return settings.CCP_PUBLIC_SCHEMA or bool(request.user and request.user.is_authenticated)
