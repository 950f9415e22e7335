"""The drift reports in the admin (read-only), and the Instance list's drift column and filter."""

from django.contrib import admin

from ccp.admin_mixins import ReadOnlyAdmin, ReadOnlyInline

from .choices import DriftState
from .models import DriftReport, InstanceDrift
from .selectors import drift_label


class DriftFilter(admin.SimpleListFilter):
    """Filters on `drift_state`, which the Instance changelist's queryset annotates (annotate_drift)."""

    title = "drift"
    parameter_name = "drift"

    def lookups(self, request, model_admin):
        return [*DriftState.choices, ("never", "Not checked yet")]

    def queryset(self, request, queryset):
        if self.value() == "never":
            return queryset.filter(drift_state__isnull=True)
        if self.value() in DriftState.values:
            return queryset.filter(drift_state=self.value())
        return queryset


@admin.display(description="Drift", ordering="drift_state")
def drift_column(instance) -> str:
    return drift_label(instance)


class InstanceDriftInline(ReadOnlyInline):
    model = InstanceDrift
    fields = ("instance", "state", "release_version", "kind", "file_summary", "changed", "error")
    readonly_fields = fields


@admin.register(DriftReport)
class DriftReportAdmin(ReadOnlyAdmin):
    list_display = ("started_at", "status", "instance_count", "drifted_count", "unreachable_count", "finished_at")
    list_filter = ("status",)
    fields = ("status", "started_at", "finished_at", "instance_count", "drifted_count", "unreachable_count", "error")
    inlines = [InstanceDriftInline]
