"""The drift report's beat task: a thin adapter over drift_report_run."""

from celery import shared_task

from .services import DriftReportRunning, drift_report_run

__all__ = ["drift_report_task"]


@shared_task(name="instances.drift.tasks.drift_report_task")
def drift_report_task() -> dict:
    try:
        report = drift_report_run()
    except DriftReportRunning as exc:
        return {"skipped": exc.message}
    return {
        "report": report.pk,
        "instances": report.instance_count,
        "drifted": report.drifted_count,
        "unreachable": report.unreachable_count,
    }
