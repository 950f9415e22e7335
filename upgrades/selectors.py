"""Reads about upgrades that other screens show (kept to a fixed number of queries per page)."""

from django.db.models import OuterRef, Subquery
from django.utils.timesince import timesince

from instances.operations.choices import OperationKind
from instances.operations.models import OperationStep

from .choices import UpgradeMode, UpgradeStatus
from .models import Release, Upgrade


def annotate_last_upgrade(queryset):
    """Add last_upgrade_at / _status / _to to each instance with subqueries (no query per row)."""
    latest = Upgrade.objects.filter(instance=OuterRef("pk")).order_by("-created_at")
    return queryset.annotate(
        last_upgrade_at=Subquery(latest.values("created_at")[:1]),
        last_upgrade_status=Subquery(latest.values("status")[:1]),
        last_upgrade_to=Subquery(latest.values("to_version")[:1]),
    )


def last_upgrade_summary(instance) -> str:
    when = getattr(instance, "last_upgrade_at", None)
    if when is None:
        return "never"
    return f"{instance.last_upgrade_to} {instance.last_upgrade_status.replace('_', ' ')} ({timesince(when)} ago)"


def upgrades_with_steps(upgrades, *, with_output: bool = True) -> list[Upgrade]:
    """Load the steps of many upgrades in one query (their output only when asked) into `step_list`."""
    upgrades = list(upgrades)
    steps = OperationStep.objects.filter(
        kind=OperationKind.UPGRADE, operation_id__in=[u.pk for u in upgrades]
    ).order_by("position")
    if not with_output:
        steps = steps.defer("output")
    by_upgrade: dict[int, list[OperationStep]] = {}
    for step in steps:
        by_upgrade.setdefault(step.operation_id, []).append(step)
    for upgrade in upgrades:
        upgrade.step_list = by_upgrade.get(upgrade.pk, [])
    return upgrades


def revert_target(upgrade: Upgrade) -> tuple[str, str] | None:
    """What "Go back to the version before" does after a finished upgrade: ("quick", tag) for a Quick upgrade,
    ("release", version) for a release upgrade (the release of the instance's previous successful one).
    None when there is nothing before (a first deploy) or the upgrade did not change anything."""
    if upgrade.status != UpgradeStatus.SUCCEEDED or upgrade.is_first_deploy:
        return None
    if upgrade.mode == UpgradeMode.IMAGE_ONLY:
        before = upgrade.from_version
        return ("quick", before) if before and before != upgrade.target_tag else None
    if upgrade.mode == UpgradeMode.RELEASE:
        previous = (
            Upgrade.objects.filter(
                instance_id=upgrade.instance_id,
                mode=UpgradeMode.RELEASE,
                status=UpgradeStatus.SUCCEEDED,
                created_at__lt=upgrade.created_at,
            )
            .exclude(release=upgrade.release)
            .select_related("release")
            .order_by("-created_at")
            .first()
        )
        if previous is not None and previous.release is not None:
            return ("release", previous.release.version)
        if upgrade.from_version and Release.objects.filter(version=upgrade.from_version).exists():
            return ("release", upgrade.from_version)
    return None


def instance_upgrades(instance, limit: int = 30) -> list[tuple[Upgrade, tuple[str, str] | None]]:
    """The instance's upgrades, newest first, each with its revert target (only the newest finished one's:
    going back is offered from where the instance is now)."""
    upgrades = list(Upgrade.objects.filter(instance=instance).select_related("release").order_by("-created_at")[:limit])
    rows, offered = [], False
    for upgrade in upgrades:
        target = None
        if not offered and upgrade.is_final:
            target, offered = revert_target(upgrade), True
        rows.append((upgrade, target))
    return rows
