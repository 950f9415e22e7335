"""Reads of the drift report: each instance's latest state (one subquery), the dashboard's summary."""

from dataclasses import dataclass, field

from django.db.models import Count, JSONField, OuterRef, Subquery

from .choices import DriftReportStatus, DriftState
from .models import DriftReport, InstanceDrift

# The dashboard names at most this many drifted instances.
DRIFTED_SHOWN = 100


def annotate_drift(queryset):
    """Instances with `drift_state`, `drift_kind` and `drift_files` of their latest report (None: never checked)."""
    latest = InstanceDrift.objects.filter(instance=OuterRef("pk")).order_by("-report_id")
    return queryset.annotate(
        drift_state=Subquery(latest.values("state")[:1]),
        drift_kind=Subquery(latest.values("kind")[:1]),
        drift_files=Subquery(latest.values("files")[:1], output_field=JSONField()),
    )


def drift_label(instance) -> str:
    """The drift column: state, kind and the files that differ, from `annotate_drift`."""
    state = getattr(instance, "drift_state", None)
    if state is None:
        return "not checked yet"
    label = DriftState(state).label
    if state != DriftState.DRIFTED:
        return label
    files = ", ".join(f["path"] for f in instance.drift_files or [])
    return f"{label} ({instance.drift_kind}): {files}"


@dataclass
class DriftSummary:
    report: DriftReport | None = None
    by_state: dict = field(default_factory=dict)
    drifted: list = field(default_factory=list)


def drift_summary() -> DriftSummary:
    """The latest finished report: counts by state and the drifted instances (a fixed number of queries)."""
    report = DriftReport.objects.filter(status=DriftReportStatus.SUCCEEDED).order_by("-started_at", "-pk").first()
    if report is None:
        return DriftSummary()
    rows = InstanceDrift.objects.filter(report=report)
    counts = rows.values_list("state").annotate(n=Count("pk")).order_by("state")
    drifted = rows.filter(state=DriftState.DRIFTED).select_related("instance").order_by("instance__slug")
    return DriftSummary(
        report=report,
        by_state={DriftState(state).label: n for state, n in counts},
        drifted=list(drifted[:DRIFTED_SHOWN]),
    )
