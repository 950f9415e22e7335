"""manage.py upgrade SLUG --mode … --to …: run one upgrade in the foreground, printing steps as they happen."""

from django.core.management.base import BaseCommand, CommandError

from ccp.errors import CCPError
from instances.models import Instance
from instances.preview import instance_preview, release_or_default
from upgrades.choices import UpgradeMode, UpgradeStatus
from upgrades.services import upgrade_request, upgrade_run


class Command(BaseCommand):
    help = (
        "Upgrade one instance in the foreground. --mode image_only --to TAG; --mode release --to VERSION "
        "(shows the preview and asks to approve it, or --yes); --mode full --to VERSION|TAG."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--mode", choices=[m.value for m in UpgradeMode], default=UpgradeMode.IMAGE_ONLY)
        parser.add_argument("--to", required=True, help="Image tag (image_only, full) or release version.")
        parser.add_argument("--yes", action="store_true", help="Approve the release preview without asking.")

    def handle(self, *args, slug: str, mode: str, to: str, yes: bool, **options) -> None:
        instance = Instance.objects.select_related("node").filter(slug=slug).first()
        if instance is None:
            raise CommandError(f"There is no instance {slug!r}.", returncode=2)
        try:
            kwargs = self._target(instance, mode, to, yes)
            upgrade = upgrade_request(instance=instance, mode=mode, enqueue=False, **kwargs)
            self.stdout.write(
                f"Upgrade #{upgrade.pk}: {upgrade.get_mode_display()} of {instance} to {upgrade.to_version}"
            )
            status = upgrade_run(upgrade_id=upgrade.pk, on_step=self._print_step)
        except CCPError as exc:
            raise CommandError(exc.message, returncode=2)
        upgrade.refresh_from_db()
        line = f"{upgrade.get_status_display()} in {upgrade.duration_seconds or 0:.1f} s"
        if status == UpgradeStatus.SUCCEEDED:
            self.stdout.write(self.style.SUCCESS(line))
            return
        raise CommandError(f"{line}: {upgrade.error}", returncode=1)

    def _target(self, instance, mode: str, to: str, yes: bool) -> dict:
        if mode != UpgradeMode.RELEASE:
            return {"image_tag": to}
        release = release_or_default(to)
        preview = instance_preview(instance=instance, release=release)
        self.stdout.write(preview.preview.summary())
        self.stdout.write(preview.coverage.format())
        if preview.blocked:
            raise CCPError(preview.blocked_reason)
        if not yes and input(f"Approve preview {preview.preview_hash[:12]} and upgrade? [y/N] ").lower() != "y":
            raise CCPError("Not approved; nothing was changed.")
        return {"release": release, "preview_hash": preview.preview_hash}

    def _print_step(self, step) -> None:
        if step.finished_at is None:
            self.stdout.write(f"  {'rollback: ' if step.is_rollback else ''}{step.name} …")
            return
        duration = f"{step.duration_seconds:.1f} s" if step.duration_seconds is not None else ""
        self.stdout.write(f"  {step.status:9} {step.name} ({duration})")
        if step.status == "failed" and step.output:
            self.stdout.write("    " + step.output.strip().replace("\n", "\n    ")[-2000:])
