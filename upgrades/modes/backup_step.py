"""The pre-upgrade backup that release and full upgrades take first; they stop when it fails."""

from instances.backups.services import backup_for_upgrade

from ..runner import StepContext, StepError


def pre_upgrade_backup(ctx: StepContext) -> str:
    backup = backup_for_upgrade(instance=ctx.instance, driver=ctx.driver, user=ctx.upgrade.requested_by)
    if backup.status != "succeeded":
        raise StepError(f"The pre-upgrade backup failed, so nothing was changed: {backup.error}")
    ctx.upgrade.state["backup_id"] = backup.pk
    ctx.upgrade.save(update_fields=["state"])
    return f"backup #{backup.pk} in {backup.location} ({backup.size_bytes or 0} bytes)"
