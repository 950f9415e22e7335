"""Writes for backups: request, run, the pre-upgrade backup, verify, and the nightly run.

Admin actions, API views, tasks and the `backup` command call these. Restore lives in restore.py,
pruning in retention.py.
"""

from __future__ import annotations

import errno
import logging
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.template.defaultfilters import filesizeformat
from django.utils import timezone

import ccp
from ccp.audit import audit_log
from ccp.errors import CCPError
from instances.choices import BackupLabel, BackupStatus, InstanceStatus
from instances.drivers import driver_for
from instances.models import Backup, Instance
from instances.operations.choices import OperationKind
from instances.operations.db import db_retry
from instances.operations.enqueue import enqueue_on_commit, operation_withdraw
from instances.operations.locks import Fence, LockLost, lock_acquire, lock_release
from instances.operations.run import operation_claim, run_operation

from . import layout, node_state
from .archive import (
    Progress,
    fsync_dir,
    hash_local,
    make_private_dirs,
    stream_from_node,
    tar_create_argv,
    write_local,
)
from .manifest import Manifest, ManifestError, differences, format_manifest, parse_manifest
from .retention import backups_prune

log = logging.getLogger(__name__)


@transaction.atomic
def backup_request(*, instance: Instance, label: str = BackupLabel.MANUAL, user=None, enqueue: bool = True) -> Backup:
    """Create a Backup row and take the instance lock in one transaction, then queue the task.

    Raises Conflict (409) naming the running operation when the instance is busy; nothing is created then.
    """
    if instance.status == InstanceStatus.DISABLED:
        raise CCPError(f"{instance} is disabled; enable it before backing it up.")
    if label not in BackupLabel.values:
        raise CCPError(f"Unknown backup label {label!r}; use one of {', '.join(BackupLabel.values)}.")
    backup = Backup.objects.create(instance=instance, label=label, requested_by=_user_or_none(user))
    lock_acquire(instance=instance, kind=OperationKind.BACKUP, operation_id=backup.pk)
    audit_log(user=user, obj=instance, action="changed", message=f"Requested {label} backup #{backup.pk}.")
    if enqueue:
        backup.task_id = str(uuid.uuid4())
        backup.save(update_fields=["task_id"])
        enqueue_on_commit(
            "instances.backups.tasks.backup_run_task",
            backup.pk,
            task_id=backup.task_id,
            withdraw=lambda: operation_withdraw(
                model=Backup,
                operation_id=backup.pk,
                pending=BackupStatus.PENDING,
                instance_id=instance.pk,
                kind=OperationKind.BACKUP,
            ),
        )
    return backup


@transaction.atomic
def backup_cancel(*, backup: Backup, user=None) -> Backup:
    """Cancel a backup that has not started (e.g. queued while the worker or the broker was away): the
    row ends cancelled and the instance's lock is released. A running backup cannot be stopped part-way."""
    backup = Backup.objects.select_for_update().get(pk=backup.pk)
    if backup.status != BackupStatus.PENDING:
        raise CCPError(
            f"Backup #{backup.pk} is {backup.get_status_display().lower()}; only a pending backup can be cancelled."
        )
    backup.status, backup.finished_at, backup.error = (
        BackupStatus.CANCELLED,
        timezone.now(),
        "Cancelled before it started.",
    )
    backup.save(update_fields=["status", "finished_at", "error"])
    lock_release(instance_id=backup.instance_id, kind=OperationKind.BACKUP, operation_id=backup.pk)
    audit_log(user=user, obj=backup.instance, action="changed", message=f"Cancelled pending backup #{backup.pk}.")
    return backup


def backup_run(*, backup_id: int, on_progress: Progress | None = None) -> str:
    """Take a requested backup (the task and the command call this). Only the caller that moves the row
    from pending to running goes on, so a duplicate delivery does nothing."""
    backup, claimed = operation_claim(Backup, backup_id, pending=BackupStatus.PENDING, running=BackupStatus.RUNNING)
    if backup is None:
        return "missing"
    if not claimed:
        return backup.status

    def refused() -> str:
        _fail(backup, "The instance lock was taken away before the backup could start (it was declared stale).")
        return backup.status

    def work(heartbeat) -> str:
        try:
            driver = driver_for(backup.instance.node)
        except CCPError as error:
            _fail(backup, error.message, fence=heartbeat.fence)
            return backup.status
        _take(backup, driver, on_progress=on_progress, fence=heartbeat.fence)
        if backup.status == BackupStatus.SUCCEEDED and backup.label == BackupLabel.SCHEDULED:
            _prune_quietly(backup.instance)  # under the lock: no restore can start meanwhile
        return backup.status

    return run_operation(kind=OperationKind.BACKUP, row=backup, work=work, refused=refused)


def _prune_quietly(instance: Instance) -> None:
    try:
        backups_prune(instance=instance)
    except Exception:  # noqa: BLE001 - a pruning problem must not turn a good backup into a failed one
        log.exception("Pruning the backups of %s failed", instance)


def backup_for_upgrade(*, instance: Instance, driver, user=None) -> Backup:
    """The pre-upgrade backup, taken inline by an upgrade that already holds the instance lock.

    Returns the row, succeeded or failed (with its error); a failure leaves nothing on disk.
    """
    backup = Backup.objects.create(
        instance=instance,
        label=BackupLabel.PRE_UPGRADE,
        status=BackupStatus.RUNNING,
        requested_by=_user_or_none(user),
        started_at=timezone.now(),
    )
    _take(backup, driver)
    return backup


def backup_verify(*, backup: Backup, user=None) -> Backup:
    """Re-hash every file of the backup against its MANIFEST.txt (and MANIFEST.txt against the row).
    Sets verified_at / verify_ok / verify_error, naming each missing or corrupted file."""
    if backup.status != BackupStatus.SUCCEEDED:
        raise CCPError(
            f"Backup #{backup.pk} is {backup.get_status_display().lower()}; only a complete backup can be verified."
        )
    problems = verify_problems(backup)
    backup.verified_at, backup.verify_ok = timezone.now(), not problems
    backup.verify_error = "; ".join(problems)
    backup.save(update_fields=["verified_at", "verify_ok", "verify_error"])
    audit_log(
        user=user,
        obj=backup,
        action="changed",
        message="Verified: " + ("all files match MANIFEST.txt." if not problems else backup.verify_error),
    )
    return backup


def verify_problems(backup: Backup) -> list[str]:
    try:
        folder = layout.absolute(backup.location)
    except ValueError:
        return ["the backup has no folder"]
    if not folder.is_dir():
        return [f"the backup folder {backup.location} is missing"]
    try:
        manifest = parse_manifest((folder / layout.MANIFEST).read_text())
    except FileNotFoundError:
        return [f"{layout.MANIFEST} is missing"]
    except (ManifestError, UnicodeDecodeError) as error:
        return [f"{layout.MANIFEST} is unreadable: {error}"]
    problems = differences(manifest, backup.manifest or {})
    for entry in manifest.files:
        path = folder / entry.name
        if not path.is_file():
            problems.append(f"{entry.name} is missing")
            continue
        sha256, size = hash_local(path)
        if sha256 != entry.sha256 or size != entry.size:
            problems.append(f"{entry.name} is corrupted (sha256 or size differs from {layout.MANIFEST})")
    return problems


def backup_all_scheduled() -> list[str]:
    """The nightly run (beat): request a scheduled backup of every active instance that has not opted
    out. A busy instance is skipped and the skip recorded as a failed backup, so the gap is visible."""
    report = []
    for instance in Instance.objects.filter(status=InstanceStatus.ACTIVE, backup_enabled=True).select_related("node"):
        try:
            backup = backup_request(instance=instance, label=BackupLabel.SCHEDULED)
        except CCPError as error:
            now = timezone.now()
            Backup.objects.create(
                instance=instance,
                label=BackupLabel.SCHEDULED,
                status=BackupStatus.FAILED,
                error=f"Skipped: {error.message}",
                started_at=now,
                finished_at=now,
            )
            report.append(f"{instance}: skipped ({error.message})")
            log.warning("Scheduled backup of %s skipped: %s", instance, error.message)
            continue
        report.append(f"{instance}: queued backup #{backup.pk}")
    return report


# --- taking a backup -----------------------------------------------------------------------------


def _take(backup: Backup, driver, *, on_progress: Progress | None = None, fence: Fence | None = None) -> None:
    """Write the backup into `<folder>.partial`, then rename it into place and mark the row succeeded.
    On any error the partial folder is removed and the row marked failed with the reason. With a
    `fence` (the backup's own claim), every write needs the lock still held; a lost lock discards the
    files and leaves the row to the reconciler (LockLost)."""
    instance = backup.instance
    started = timezone.now()
    final = _reserve_folder(instance, started, backup.label)
    partial = layout.partial_of(final)
    backup.location, backup.started_at = layout.relative(final), backup.started_at or started
    _write(fence, lambda: backup.save(update_fields=["location", "started_at"]), what="the backup's folder")
    try:
        files = _write_files(backup, driver, partial, started, on_progress)
        manifest = Manifest(meta=_manifest_meta(backup, started), files=files)
        write_local(partial / layout.MANIFEST, format_manifest(manifest).encode())
        fsync_dir(partial)
        if fence is not None:
            fence.check()
        partial.rename(final)
        fsync_dir(final.parent)
    except BaseException as error:
        shutil.rmtree(partial, ignore_errors=True)
        if isinstance(error, LockLost):
            raise
        _fail(backup, _describe(error), clear_location=True, fence=fence)
        if not isinstance(error, Exception):
            raise  # KeyboardInterrupt, SystemExit: recorded and cleaned up, then on their way
        return
    size = sum(f.size for f in files) + (final / layout.MANIFEST).stat().st_size
    # Conditional: if the reconciler declared this backup interrupted meanwhile, its verdict stands.
    try:
        updated = _write(
            fence,
            lambda: Backup.objects.filter(pk=backup.pk, status=BackupStatus.RUNNING).update(
                status=BackupStatus.SUCCEEDED,
                finished_at=timezone.now(),
                size_bytes=size,
                manifest=manifest.as_json(),
                error="",
            ),
            what="the backup's result",
        )
    except LockLost:
        shutil.rmtree(final, ignore_errors=True)
        raise
    if not updated:
        shutil.rmtree(final, ignore_errors=True)
    db_retry(backup.refresh_from_db, what="the backup's result")
    log.info("Backup #%s of %s: %s (%s bytes) in %s", backup.pk, instance, backup.status, size, backup.location)


def _write_files(backup: Backup, driver, partial: Path, started: datetime, on_progress) -> list:
    instance = backup.instance
    make_private_dirs(partial, below=Path(settings.BACKUP_ROOT))
    found = node_state.inventory(driver, instance.install_dir)
    files = []
    for plan in layout.archive_plan(found):
        files.append(
            stream_from_node(
                driver,
                argv=tar_create_argv(instance.install_dir, plan.paths),
                target=partial / plan.name,
                paths=plan.paths,
                on_progress=on_progress,
            )
        )
    text = node_state.host_state(driver, instance, started)
    files.append(write_local(partial / layout.HOST_STATE, text.encode()))
    if found.is_git_checkout:
        text = node_state.git_state(driver, instance.install_dir)
        files.append(write_local(partial / layout.GIT_STATE, text.encode()))
    return files


def _manifest_meta(backup: Backup, started: datetime) -> dict[str, str]:
    instance = backup.instance
    return {
        "instance": instance.slug,
        "node": instance.node.name,
        "label": backup.label,
        "install_dir": instance.install_dir,
        "backup_id": str(backup.pk),
        "started": _iso(started),
        "finished": _iso(timezone.now()),
        "ccp_version": ccp.__version__,
    }


def _reserve_folder(instance: Instance, started: datetime, label: str) -> Path:
    """The final folder path: unique even if two backups start within the same second."""
    root = layout.instance_root(node_name=instance.node.name, slug=instance.slug)
    base = layout.folder_name(started.astimezone(UTC), label)
    candidate, n = root / base, 1
    while candidate.exists() or layout.partial_of(candidate).exists():
        n += 1
        candidate = root / f"{base}-{n}"
    return candidate


def _write(fence: Fence | None, fn, *, what: str):
    """A write of the backup's own record: conditional on its lock when it runs under one, and retried
    across a short database outage either way."""
    return fence.write(fn, what=what) if fence is not None else db_retry(fn, what=what)


def _fail(backup: Backup, message: str, *, clear_location: bool = False, fence: Fence | None = None) -> None:
    backup.status, backup.error, backup.finished_at = BackupStatus.FAILED, message, timezone.now()
    fields = ["status", "error", "finished_at"]
    if clear_location:
        backup.location = ""
        fields.append("location")
    _write(
        fence,
        lambda: Backup.objects.filter(pk=backup.pk, status__in=[BackupStatus.PENDING, BackupStatus.RUNNING]).update(
            **{name: getattr(backup, name) for name in fields}
        ),
        what="the backup's failure",
    )
    log.warning("Backup #%s of %s failed: %s", backup.pk, backup.instance_id, message)


def _describe(error: BaseException) -> str:
    if isinstance(error, CCPError):
        return error.message
    if isinstance(error, KeyboardInterrupt):
        return "Interrupted (the command was stopped)."
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return _disk_full(error)
    if isinstance(error, OSError) and error.filename:
        return f"Cannot write the backup: {error.strerror} ({error.filename})."
    log.exception("Backup failed unexpectedly")
    return f"{type(error).__name__}: {error}"


def _disk_full(error: OSError) -> str:
    """The panel's backup disk is full: say where, and how much is free (after the partial files went)."""
    root = Path(settings.BACKUP_ROOT)
    try:
        usage = shutil.disk_usage(root)
        free = f"{filesizeformat(usage.free)} free of {filesizeformat(usage.total)}"
    except OSError:
        free = "free space unknown"
    where = f" while writing {error.filename}" if error.filename else ""
    log.warning("Backup disk full under %s%s (%s)", root, where, free)
    return (
        f"The panel's backup disk is full: no space left under BACKUP_ROOT {root}{where} ({free} now that "
        "the partial backup was removed). Free space there, or move BACKUP_ROOT to a larger disk, then back "
        "up again."
    )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _user_or_none(user):
    return user if user is not None and getattr(user, "is_authenticated", False) else None
