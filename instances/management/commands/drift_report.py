"""manage.py drift_report: run the nightly drift report now, in the foreground, and print what it found."""

import sys

from django.core.management.base import BaseCommand

from ccp.errors import CCPError
from instances.drift.choices import DriftState
from instances.drift.services import drift_report_run
from instances.management.cli import fail


class Command(BaseCommand):
    help = (
        "Preview every active instance against the release it runs and record drift (as the nightly task). "
        "Exit 0: all in sync; 1: some drifted; 2: some unreachable or not checked."
    )

    def handle(self, *args, **options) -> None:
        try:
            report = drift_report_run()
        except CCPError as exc:
            raise fail(exc.message) from None
        worst = 0
        for row in report.instances.select_related("instance").order_by("instance__slug"):
            line = f"{row.instance.slug}: {row.get_state_display().lower()}"
            if row.state == DriftState.DRIFTED:
                line += f" ({row.kind}): {row.file_summary}" + (" [new]" if row.changed else "")
                worst = max(worst, 1)
            elif row.error:
                line += f": {row.error}"
            if row.state in (DriftState.UNREACHABLE, DriftState.UNKNOWN):
                worst = 2
            self.stdout.write(line)
        self.stdout.write(
            f"Drift report #{report.pk}: {report.instance_count} instance(s), {report.drifted_count} drifted, "
            f"{report.unreachable_count} unreachable."
        )
        if worst:
            sys.exit(worst)
