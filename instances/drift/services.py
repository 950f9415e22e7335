"""The drift report: preview every active instance against the release it runs, record what differs.

One connection per node at a time (nodes in parallel, see instances.per_node); a preview only reads the
node's files. A drift is notified when it is new or differs from the one the last report that reached
the instance found, so a drift left alone is reported once, not every night.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from ccp.errors import CCPError
from instances.choices import InstanceStatus
from instances.context import default_release, release_named
from instances.drivers.errors import DriverError
from instances.models import Instance
from instances.notifications.choices import NotificationEvent
from instances.notifications.services import notify
from instances.per_node import map_per_node
from instances.preview import instance_preview
from instances.redaction import redact, secret_values

from .choices import DriftReportStatus, DriftState
from .models import DriftReport, InstanceDrift

log = logging.getLogger(__name__)

# Reports kept (with their per-instance rows); older ones are removed when a new one starts.
REPORTS_KEPT = 60
# A report still "running" after this long was left by a worker that died.
STALE_AFTER = timedelta(hours=6)


class DriftReportRunning(CCPError):
    http_status = 409


def release_running(instance: Instance):
    """The release the instance runs: the one named by the version CCP last saw on it; with none seen
    yet, the fleet default (what an instance without its own tag runs). None: no such release."""
    if instance.observed_version:
        return release_named(instance.observed_version)
    return default_release()


def instance_drift_check(instance: Instance) -> dict:
    """One instance's drift, as the fields of an InstanceDrift row. Never raises: a failure is a state."""
    release = release_running(instance)
    if release is None:
        return {
            "state": DriftState.UNKNOWN,
            "error": f"No release is named {instance.observed_version!r}, the version CCP last saw on "
            f"{instance}; add that release (or upgrade the instance) to have its drift checked.",
        }
    fields = {"release_version": release.version}
    try:
        preview = instance_preview(instance=instance, release=release)
    except DriverError as exc:
        return {**fields, "state": DriftState.UNREACHABLE, "error": redact(exc.message, secret_values(instance))}
    except CCPError as exc:
        return {**fields, "state": DriftState.UNKNOWN, "error": redact(exc.message, secret_values(instance))}
    except Exception as exc:  # noqa: BLE001 - one instance's bug must not lose the whole report
        log.exception("Drift check of %s failed", instance)
        return {**fields, "state": DriftState.UNKNOWN, "error": f"Unexpected error: {type(exc).__name__}"}
    changes = preview.preview.changes
    if not changes:
        return {**fields, "state": DriftState.IN_SYNC}
    return {
        **fields,
        "state": DriftState.DRIFTED,
        "kind": str(preview.preview.kind),
        "files": [{"path": f.path, "status": str(f.status), "kind": str(f.kind)} for f in changes],
        "fingerprint": preview.preview_hash,
    }


def drift_report_run() -> DriftReport:
    """Run a report over every active instance (the beat task and `manage.py drift_report` call this)."""
    report = _start()
    try:
        instances = list(Instance.objects.select_related("node").filter(status=InstanceStatus.ACTIVE))
        found = map_per_node(instances, instance_drift_check, per_node=1, thread_name_prefix="ccp-drift")
        records = [_record(report, instance, found[instance.pk]) for instance in instances]
    except Exception as exc:
        DriftReport.objects.filter(pk=report.pk).update(
            status=DriftReportStatus.FAILED, finished_at=timezone.now(), error=f"{type(exc).__name__}: {exc}"
        )
        raise
    DriftReport.objects.filter(pk=report.pk).update(
        status=DriftReportStatus.SUCCEEDED,
        finished_at=timezone.now(),
        instance_count=len(records),
        drifted_count=sum(r.state == DriftState.DRIFTED for r in records),
        unreachable_count=sum(r.state == DriftState.UNREACHABLE for r in records),
    )
    report.refresh_from_db()
    return report


@transaction.atomic
def _start() -> DriftReport:
    now = timezone.now()
    DriftReport.objects.select_for_update().filter(
        status=DriftReportStatus.RUNNING, started_at__lt=now - STALE_AFTER
    ).update(status=DriftReportStatus.FAILED, finished_at=now, error="Interrupted: its worker stopped.")
    running = DriftReport.objects.select_for_update().filter(status=DriftReportStatus.RUNNING).first()
    if running is not None:
        raise DriftReportRunning(f"Drift report #{running.pk} is running since {running.started_at:%H:%M} UTC.")
    old = DriftReport.objects.order_by("-started_at", "-pk").values_list("pk", flat=True)[REPORTS_KEPT - 1 :]
    DriftReport.objects.filter(pk__in=list(old)).delete()
    return DriftReport.objects.create()


def _record(report: DriftReport, instance: Instance, fields: dict) -> InstanceDrift:
    last_seen = (
        InstanceDrift.objects.filter(instance=instance, state__in=[DriftState.IN_SYNC, DriftState.DRIFTED])
        .order_by("-report_id")
        .first()
    )
    drifted = fields["state"] == DriftState.DRIFTED
    changed = drifted and (
        last_seen is None or last_seen.state != DriftState.DRIFTED or last_seen.fingerprint != fields["fingerprint"]
    )
    with transaction.atomic():
        record = InstanceDrift.objects.create(report=report, instance=instance, changed=changed, **fields)
        if changed:
            notify(
                NotificationEvent.INSTANCE_DRIFTED,
                title=f"{instance} has drifted from release {record.release_version}",
                body=f"Files on node {instance.node} differ from what release {record.release_version} renders "
                f"({record.kind}): {record.file_summary}.",
                url=reverse("admin:instances_instance_change", args=[instance.pk]),
                instance=instance,
                dedupe_key=f"drift-{record.pk}",
            )
    return record
