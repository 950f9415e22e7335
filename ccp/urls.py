from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from ccp.dashboard import fleet_dashboard
from ccp.health import healthz
from ccp.metrics import metrics
from instances.api.backup_views import BackupViewSet
from instances.api.views import InstanceViewSet, NodeViewSet
from upgrades.api.views import ReleaseViewSet, UpgradeViewSet

admin.site.site_header = "CCP — fleet control panel"
admin.site.site_title = "CCP"
admin.site.index_title = "Fleet administration"

handler500 = "ccp.api.exceptions.server_error"

router = DefaultRouter()
router.register("nodes", NodeViewSet)
router.register("instances", InstanceViewSet)
router.register("releases", ReleaseViewSet)
router.register("backups", BackupViewSet)
router.register("upgrades", UpgradeViewSet)

urlpatterns = [
    path("admin/fleet/", admin.site.admin_view(fleet_dashboard), name="fleet-dashboard"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(router.urls)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),
]
