"""Reads about upgrades that other screens show (kept to a fixed number of queries per page)."""

from django.db.models import OuterRef, Subquery
from django.utils.timesince import timesince

from instances.operations.choices import OperationKind
from instances.operations.models import OperationStep

from .models import Upgrade


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
