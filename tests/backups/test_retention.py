"""Retention on a synthetic history: exactly the expected backups go, folder and row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from instances.backups.retention import Candidate, backups_prune, expired
from instances.backups.services import backup_request, backup_run
from instances.choices import BackupLabel, BackupStatus, RestoreStatus
from instances.models import Backup, Restore

NOW = datetime(2025, 3, 20, 12, 0, tzinfo=UTC)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2025, 3, day, hour, minute, tzinfo=UTC)


def synthetic_history(instance, backup_root) -> dict[str, Backup]:
    """20 nightly scheduled backups (1-20 March), 4 manual, 2 pre-upgrade, one failed, one running."""
    made: dict[str, Backup] = {}

    def add(key: str, label: str, when: datetime, status=BackupStatus.SUCCEEDED) -> None:
        location = (
            f"{instance.node.name}/{instance.slug}/{when:%Y%m%dT%H%M%SZ}-{label}"
            if status != BackupStatus.FAILED
            else ""
        )
        backup = Backup.objects.create(instance=instance, label=label, status=status, location=location)
        Backup.objects.filter(pk=backup.pk).update(created_at=when)
        if status == BackupStatus.SUCCEEDED:
            folder = backup_root / location
            folder.mkdir(parents=True)
            (folder / "MANIFEST.txt").write_text("x")
        made[key] = backup

    for day in range(1, 21):
        add(f"scheduled-{day}", BackupLabel.SCHEDULED, at(day, 2, 30))
    for key, when in {
        "manual-19": at(19, 10),
        "manual-10": at(10, 9),
        "manual-5": at(5, 9),
        "manual-2": at(2, 8),
    }.items():
        add(key, BackupLabel.MANUAL, when)
    add("pre-upgrade-20", BackupLabel.PRE_UPGRADE, at(20, 11))
    add("pre-upgrade-18", BackupLabel.PRE_UPGRADE, at(18, 14))
    add("failed-3", BackupLabel.SCHEDULED, at(3, 2, 30), status=BackupStatus.FAILED)
    add("running", BackupLabel.MANUAL, at(20, 11, 59), status=BackupStatus.RUNNING)
    return made


def test_prune_removes_exactly_the_expected_backups(make_instance, settings, tmp_path):
    settings.BACKUP_ROOT = tmp_path
    settings.CCP_BACKUP_KEEP_PER_LABEL = 3
    settings.CCP_BACKUP_KEEP_DAILY_DAYS = 5
    instance = make_instance()
    made = synthetic_history(instance, tmp_path)
    # A restore in progress uses the oldest backup: it stays whatever its age.
    Restore.objects.create(backup=made["scheduled-1"], instance=instance, status=RestoreStatus.RUNNING)
    root = tmp_path / instance.node.name / instance.slug
    running_partial = root / (made["running"].location.rsplit("/", 1)[1] + ".partial")
    running_partial.mkdir()
    (root / "20250301T000000Z-manual.partial").mkdir()  # left by a crash: nobody owns it

    report = backups_prune(instance=instance, now=NOW)

    expected_gone = {f"scheduled-{day}" for day in range(2, 16)} | {"manual-2"}
    remaining = set(Backup.objects.filter(instance=instance).values_list("pk", flat=True))
    assert {key for key, b in made.items() if b.pk not in remaining} == expected_gone
    for key, backup in made.items():
        if backup.status == BackupStatus.SUCCEEDED:
            assert (tmp_path / backup.location).exists() == (key not in expected_gone), key
    assert len([line for line in report if line.startswith("pruned backup")]) == len(expected_gone)
    assert "removed leftover folder" in report[-1] and "20250301T000000Z-manual.partial" in report[-1]
    assert running_partial.exists()
    assert not list(root.glob("*.pruning"))


def test_the_rules_keep_newest_per_label_and_one_per_day():
    day = timedelta(days=1)
    candidates = [Candidate(i, "scheduled", NOW - i * day) for i in range(10)]
    candidates += [Candidate(100, "manual", NOW - 30 * day)]
    assert expired(candidates, now=NOW, keep_per_label=2, keep_days=4) == [4, 5, 6, 7, 8, 9]
    # Two on one day: the daily rule keeps only the newer one.
    twins = [Candidate(1, "a", at(19, 10)), Candidate(2, "a", at(19, 9)), Candidate(3, "b", at(19, 8))]
    assert expired(twins, now=NOW, keep_per_label=0, keep_days=3) == [2]  # label "b" keeps its newest
    assert expired([], now=NOW, keep_per_label=1, keep_days=1) == []


@pytest.mark.testbed
def test_a_scheduled_backup_prunes_afterwards(make_tenant, backup_root, settings):
    settings.CCP_BACKUP_KEEP_PER_LABEL = 1
    settings.CCP_BACKUP_KEEP_DAILY_DAYS = 0
    tenant = make_tenant()
    ids = []
    for _ in range(2):
        backup = backup_request(instance=tenant.instance, label=BackupLabel.SCHEDULED, enqueue=False)
        backup_run(backup_id=backup.pk)
        ids.append(backup.pk)
    assert list(Backup.objects.filter(instance=tenant.instance).values_list("pk", flat=True)) == [ids[1]]
    folders = list((backup_root / tenant.node.name / tenant.instance.slug).iterdir())
    assert [f.name for f in folders] == [Backup.objects.get(pk=ids[1]).location.rsplit("/", 1)[1]]
