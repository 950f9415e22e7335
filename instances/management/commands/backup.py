"""manage.py backup SLUG… | --all [--label L]: back up in the foreground, showing bytes streamed per archive."""

import sys
import time

from django.core.management.base import BaseCommand, CommandError
from django.template.defaultfilters import filesizeformat

from ccp.errors import CCPError
from instances.backups.services import backup_request, backup_run
from instances.choices import BackupLabel, BackupStatus, InstanceStatus
from instances.models import Backup, Instance


class Progress:
    """One line per archive; on a terminal the line counts up in place."""

    def __init__(self, out, interval: float = 0.5):
        self.out, self.interval = out, interval
        self.tty = hasattr(out, "isatty") and out.isatty()
        self.name, self.size, self.shown_size, self.shown_at = "", 0, -1, 0.0

    def __call__(self, name: str, size: int) -> None:
        if name != self.name:
            self.done()
            self.name, self.shown_at = name, time.monotonic()
        self.size = size
        now = time.monotonic()
        if now - self.shown_at >= self.interval:
            self.shown_at = now
            self._show(end="\r" if self.tty else "\n")

    def done(self) -> None:
        """The archive's final size, unless that very line is already on screen."""
        if self.name and (self.tty or self.size != self.shown_size):
            self._show(end="\n")
        self.name = ""

    def _show(self, end: str) -> None:
        self.shown_size = self.size
        self.out.write(f"  {self.name}: {filesizeformat(self.size)} streamed", ending=end)
        self.out.flush()


class Command(BaseCommand):
    help = "Back up instances now, in the foreground. Exit code 1 if any backup failed or was refused."

    def add_arguments(self, parser):
        parser.add_argument("slugs", nargs="*", metavar="SLUG")
        parser.add_argument(
            "--all",
            action="store_true",
            help="Every active instance that has backups enabled (as the nightly schedule).",
        )
        parser.add_argument("--label", choices=BackupLabel.values, default=BackupLabel.MANUAL)

    def handle(self, *args, slugs, all, label, **options):  # noqa: A002 - the option is called --all
        if bool(slugs) == bool(all):
            raise CommandError("Name instance slugs or give --all (not both).")
        if all:
            instances = list(
                Instance.objects.filter(status=InstanceStatus.ACTIVE, backup_enabled=True).select_related("node")
            )
        else:
            found = {i.slug: i for i in Instance.objects.filter(slug__in=slugs).select_related("node")}
            missing = [slug for slug in slugs if slug not in found]
            if missing:
                raise CommandError(f"No instance {', '.join(missing)}.")
            instances = [found[slug] for slug in slugs]
        failures = sum(not self._back_up(instance, label) for instance in instances)
        if failures:
            self.stderr.write(f"{failures} of {len(instances)} backup(s) failed.")
            sys.exit(1)

    def _back_up(self, instance: Instance, label: str) -> bool:
        self.stdout.write(f"{instance} on {instance.node}: {label} backup")
        try:
            backup = backup_request(instance=instance, label=label, enqueue=False)
        except CCPError as error:
            self.stderr.write(f"  refused: {error.message}")
            return False
        progress = Progress(self.stdout)
        backup_run(backup_id=backup.pk, on_progress=progress)
        progress.done()
        backup = Backup.objects.get(pk=backup.pk)
        if backup.status != BackupStatus.SUCCEEDED:
            self.stderr.write(f"  failed: {backup.error}")
            return False
        self.stdout.write(f"  done: #{backup.pk}, {filesizeformat(backup.size_bytes)} in {backup.location}")
        return True
