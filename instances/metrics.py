"""What /metrics reports about the fleet (README "Metrics"): instances by health, status and version,
operations by kind and result, and the age of each instance's newest good backup.

A read: it changes nothing. It costs a fixed number of queries whatever the fleet's size (counts are
aggregates; the per-instance series come from one grouped query), so a scrape every 15 s stays cheap.
Every choice of health, status and result is reported, zeros included, so a series never vanishes when
its count drops to zero (an alert on it would silently stop otherwise).
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Count, Max, Q

from ccp.prometheus import MetricFamily
from upgrades.choices import UpgradeMode, UpgradeStatus
from upgrades.models import Upgrade

from .choices import BackupStatus, Health, InstanceStatus, RestoreStatus
from .models import Attention, Backup, Instance, Restore

NO_VERSION = "unknown"

# A good backup completed and has not failed a verification since (not verified yet still counts: a
# fresh backup is verified by its own hashing while it streams).
GOOD_BACKUP = Q(backups__status=BackupStatus.SUCCEEDED) & (
    Q(backups__verify_ok__isnull=True) | Q(backups__verify_ok=True)
)


def _counts(queryset, *fields: str) -> dict:
    rows = queryset.values_list(*fields).annotate(n=Count("pk")).order_by()
    return {row[:-1]: row[-1] for row in rows}


def _instances() -> list[tuple]:
    """(slug, node, status, health, version, newest good backup's start) of every instance, one query."""
    return list(
        Instance.objects.values_list("slug", "node__name", "status", "health", "observed_version")
        .annotate(last_good=Max("backups__started_at", filter=GOOD_BACKUP))
        .order_by("slug")
    )


def fleet_metrics(*, now: datetime) -> list[MetricFamily]:
    instances = _instances()
    by_health = MetricFamily("ccp_instances", "Instances by their last observed health.")
    by_status = MetricFamily("ccp_instances_by_status", "Instances by status (active, maintenance, disabled).")
    by_version = MetricFamily(
        "ccp_instances_by_version", f"Instances by the version observed running ({NO_VERSION}: never observed)."
    )
    info = MetricFamily(
        "ccp_instance_info",
        "One series per instance, value 1, carrying its node, status, "
        "health and observed version as labels (for joins in queries).",
    )
    age = MetricFamily(
        "ccp_instance_last_good_backup_age_seconds",
        "Seconds since the newest good backup of the instance started (completed and not "
        "failed verification); +Inf when it has none.",
    )
    taken = MetricFamily(
        "ccp_instance_last_good_backup_timestamp_seconds",
        "Unix time the newest good backup of the instance started; absent when it has none.",
    )

    health_counts = dict.fromkeys(Health.values, 0)
    status_counts = dict.fromkeys(InstanceStatus.values, 0)
    version_counts: dict[str, int] = {}
    for slug, node, status, health, version, last_good in instances:
        version = version or NO_VERSION
        health_counts[health] = health_counts.get(health, 0) + 1
        status_counts[status] = status_counts.get(status, 0) + 1
        version_counts[version] = version_counts.get(version, 0) + 1
        info.add(1, slug=slug, node=node, status=status, health=health, version=version)
        if last_good is None:
            age.add(float("inf"), slug=slug, node=node)
        else:
            age.add(max(0.0, (now - last_good).total_seconds()), slug=slug, node=node)
            taken.add(last_good.timestamp(), slug=slug, node=node)
    for health, n in health_counts.items():
        by_health.add(n, health=health)
    for status, n in status_counts.items():
        by_status.add(n, status=status)
    for version, n in sorted(version_counts.items()):
        by_version.add(n, version=version)

    attention = MetricFamily("ccp_instances_needing_attention", "Instances with an unresolved attention record.")
    attention.add(Attention.objects.filter(resolved_at__isnull=True).values("instance").distinct().count())
    return [by_health, by_status, by_version, info, attention, age, taken, *_operations()]


def _operations() -> list[MetricFamily]:
    """Counts of the operation rows the database holds. Gauges, not counters: retention deletes the rows
    of pruned backups, so a count can go down."""
    upgrades = _counts(Upgrade.objects.all(), "mode", "status")
    backups = _counts(Backup.objects.all(), "status")
    restores = _counts(Restore.objects.all(), "status")
    upgrades_by_status = {status: 0 for status in UpgradeStatus.values}
    for (_, status), n in upgrades.items():
        upgrades_by_status[status] = upgrades_by_status.get(status, 0) + n
    operations = MetricFamily(
        "ccp_operations",
        "Operations recorded in the database, by kind (upgrade, backup, "
        "restore) and result (their status; running and pending included).",
    )
    for kind, counts in (
        ("upgrade", upgrades_by_status),
        ("backup", {status: backups.get((status,), 0) for status in BackupStatus.values}),
        ("restore", {status: restores.get((status,), 0) for status in RestoreStatus.values}),
    ):
        for status, n in counts.items():
            operations.add(n, kind=kind, result=status)
    by_mode = MetricFamily("ccp_upgrades", "Upgrades recorded in the database, by mode and result.")
    for mode in UpgradeMode.values:
        for status in UpgradeStatus.values:
            by_mode.add(upgrades.get((mode, status), 0), mode=mode, result=status)
    return [operations, by_mode]
