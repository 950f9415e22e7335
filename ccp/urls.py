from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from ccp.dashboard import fleet_dashboard
from ccp.health import healthz
from ccp.metrics import metrics
from instances.api.backup_views import BackupViewSet
from instances.api.progress_views import OperationProgressView
from instances.api.views import InstanceViewSet, NodeViewSet
from instances.operations.choices import OperationKind
from upgrades.api.views import ReleaseViewSet, UpgradeViewSet
from upgrades.rollouts.api.views import RolloutViewSet

admin.site.site_header = "CCP — fleet control panel"
admin.site.site_title = "CCP"
admin.site.index_title = "Fleet administration"
# The changelists must fit a 1366 px screen: the model sidebar would take a quarter of it (the index lists them).
admin.site.enable_nav_sidebar = False
admin.site.site_url = "/admin/fleet/"  # "View site": the fleet dashboard (the panel has no other site)

handler500 = "ccp.api.exceptions.server_error"

router = DefaultRouter()
router.register("nodes", NodeViewSet)
router.register("instances", InstanceViewSet)
router.register("releases", ReleaseViewSet)
router.register("backups", BackupViewSet)
router.register("upgrades", UpgradeViewSet)
router.register("rollouts", RolloutViewSet)

urlpatterns = [
    path("admin/fleet/", admin.site.admin_view(fleet_dashboard), name="fleet-dashboard"),
    path("admin/", admin.site.urls),
    # One answer for every long operation: how far it got, with each step's live output.
    *[
        path(
            f"api/v1/{kind}s/<int:pk>/progress/",
            OperationProgressView.as_view(kind=kind),
            name=f"{kind}-progress",
        )
        for kind in OperationKind.values
    ],
    path("api/v1/", include(router.urls)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),
]
