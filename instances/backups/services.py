"""Writes for backups: request, run, the pre-upgrade backup, verify, and the nightly run.

Admin actions, API views, tasks and the `backup` command call these. Restore lives in restore.py,
pruning in retention.py.
"""

from __future__ import annotations

import errno
import logging
import shutil
import tarfile
import uuid
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils import timezone

import ccp
from ccp.audit import audit_log
from ccp.errors import CCPError
from instances.choices import BackupLabel, BackupStatus, InstanceStatus
from instances.commands.tar import create_gz_argv
from instances.drivers import driver_for
from instances.models import Backup, Instance
from instances.notifications.choices import NotificationEvent
from instances.notifications.services import notify
from instances.operations import progress
from instances.operations.choices import OperationKind
from instances.operations.db import db_retry
from instances.operations.enqueue import enqueue_on_commit, operation_withdraw
from instances.operations.locks import Fence, LockLost, lock_acquire, lock_release
from instances.operations.run import operation_claim, run_operation
from instances.redaction import secret_values

from . import encryption, host_records, layout
from .archive import HashingReader, Progress, hash_stored, member_hashes, stream_from_node, write_small
from .manifest import Manifest, ManifestError, differences, format_manifest, parse_manifest
from .retention import backups_prune
from .storage import BackupWriter, MissingFile, StorageError, backup_storage

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
    """Stream every file back from the storage and check it against MANIFEST.txt. An encrypted archive
    is also decrypted and read to its end when this process has the identity (workers do; the web
    process need not): that proves the archive opens, not only that its bytes are intact."""
    if not backup.location:
        return ["the backup has no folder"]
    try:
        storage = backup_storage()
        with storage.open(backup.location, layout.MANIFEST) as source:
            manifest = parse_manifest(source.read().decode())
    except MissingFile:
        return [f"{layout.MANIFEST} is missing (the backup {backup.location} is not in {storage})"]
    except (ManifestError, UnicodeDecodeError) as error:
        return [f"{layout.MANIFEST} is unreadable: {error}"]
    except StorageError as error:
        return [error.message]
    problems = differences(manifest, backup.manifest or {})
    identities = _identities_if_any() if manifest.encrypted else None
    for entry in manifest.files:
        try:
            with storage.open(backup.location, entry.name) as source:
                if entry.encrypted and identities:
                    sha256, size, opened = _hash_and_open(source, entry.name, identities)
                else:
                    (sha256, size), opened = hash_stored(source), ""
        except MissingFile:
            problems.append(f"{entry.name} is missing")
            continue
        except CCPError as error:
            problems.append(f"{entry.name} could not be read: {error.message}")
            continue
        if sha256 != entry.sha256 or size != entry.size:
            problems.append(f"{entry.name} is corrupted (sha256 or size differs from {layout.MANIFEST})")
        elif opened:
            problems.append(opened)
    return problems


def _identities_if_any() -> list | None:
    try:
        return encryption.identities()
    except encryption.EncryptionError:
        return None


def _hash_and_open(source, name: str, identities: list) -> tuple[str, int, str]:
    """(sha256, size) of the stored ciphertext, and a problem if it does not decrypt to a readable archive."""
    reader = HashingReader(source)
    problem = ""
    try:
        with encryption.Decrypted(reader, name, identities) as plain:
            member_hashes(plain)
    except encryption.EncryptionError as error:
        problem = error.message
    except (OSError, EOFError, ValueError, tarfile.TarError, zlib.error) as error:  # not a whole .tar.gz
        problem = f"{name} decrypts, but not to a readable archive ({error})"
    reader.drain()
    return reader.digest.hexdigest(), reader.size, problem


def backup_all_scheduled(*, now: datetime | None = None) -> list[str]:
    """The nightly run (beat): request a scheduled backup of every active instance that has not opted
    out. A busy instance is skipped and the skip recorded as a failed backup, so the gap is visible.

    Safe when two beats fire the same tick: each instance is handled under a row lock on it, and an
    instance whose scheduled backup was requested within CCP_BACKUP_SCHEDULE_DEDUP_SECONDS is left
    alone, so the second run requests nothing and records no skip."""
    report = []
    for instance in Instance.objects.filter(status=InstanceStatus.ACTIVE, backup_enabled=True).select_related("node"):
        report.append(_schedule_one(instance, now or timezone.now()))
    return report


@transaction.atomic
def _schedule_one(instance: Instance, now: datetime) -> str:
    Instance.objects.select_for_update().filter(pk=instance.pk).first()  # one scheduler per instance at a time
    since = now - timedelta(seconds=settings.CCP_BACKUP_SCHEDULE_DEDUP_SECONDS)
    already = Backup.objects.filter(instance=instance, label=BackupLabel.SCHEDULED, created_at__gte=since).first()
    if already is not None:
        return f"{instance}: scheduled backup #{already.pk} already requested at {already.created_at:%H:%M:%S}"
    try:
        backup = backup_request(instance=instance, label=BackupLabel.SCHEDULED)
    except CCPError as error:
        skipped = Backup.objects.create(
            instance=instance,
            label=BackupLabel.SCHEDULED,
            status=BackupStatus.FAILED,
            error=f"Skipped: {error.message}",
            started_at=now,
            finished_at=now,
        )
        notify_backup_failed(skipped)
        log.warning("Scheduled backup of %s skipped: %s", instance, error.message)
        return f"{instance}: skipped ({error.message})"
    return f"{instance}: queued backup #{backup.pk}"


# --- taking a backup -----------------------------------------------------------------------------


def _take(backup: Backup, driver, *, on_progress: Progress | None = None, fence: Fence | None = None) -> None:
    """Write the backup's files into the storage, MANIFEST.txt last (which makes it complete), then mark
    the row succeeded. On any error what was written is removed and the row marked failed with the reason.
    With a `fence` (the backup's own claim), every write needs the lock still held; a lost lock discards
    the files and leaves the row to the reconciler (LockLost)."""
    instance = backup.instance
    started = timezone.now()
    try:
        storage = backup_storage()
        recipients = encryption.recipients()
        location = storage.reserve(
            f"{layout.instance_backups_folder(node_name=instance.node.name, slug=instance.slug)}/"
            f"{layout.folder_name(started.astimezone(UTC), backup.label)}"
        )
    except CCPError as error:
        _fail(backup, error.message, clear_location=True, fence=fence)
        return
    backup.location, backup.started_at = location, backup.started_at or started
    _write(fence, lambda: backup.save(update_fields=["location", "started_at"]), what="the backup's location")
    writer = None
    try:
        writer = storage.writer(location)
        files = _write_files(backup, driver, writer, started, recipients, on_progress)
        with _step(backup, "write MANIFEST.txt, which completes the backup", key="manifest") as out:
            meta = _manifest_meta(backup, started)
            if recipients:
                meta["age_recipients"] = encryption.recipients_text()
            manifest = Manifest(meta=meta, files=files)
            text = format_manifest(manifest).encode()
            if fence is not None:
                fence.check()
            writer.commit(text)
            out.write(f"{len(files) + 1} files in {backup.location}")
    except BaseException as error:
        if writer is not None:
            _discard_quietly(writer)
        if isinstance(error, LockLost):
            raise
        _fail(backup, _describe(error), clear_location=True, fence=fence)
        if not isinstance(error, Exception):
            raise  # KeyboardInterrupt, SystemExit: recorded and cleaned up, then on their way
        return
    size = sum(f.size for f in files) + len(text)
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
        storage.remove(location)
        raise
    if not updated:
        storage.remove(location)
    db_retry(backup.refresh_from_db, what="the backup's result")
    log.info("Backup #%s of %s: %s (%s bytes) in %s", backup.pk, instance, backup.status, size, backup.location)


def _discard_quietly(writer: BackupWriter) -> None:
    try:
        writer.discard()
    except Exception:  # noqa: BLE001 - the sweep of the next prune removes what is left
        log.exception("Removing the files of a failed backup failed")


def _write_files(backup: Backup, driver, writer: BackupWriter, started: datetime, recipients, on_progress) -> list:
    """Each archive is a step of the backup's progress, with the bytes read from the node so far."""
    instance = backup.instance
    with _step(backup, f"list what to back up in {instance.install_dir}", key="inventory") as out:
        found = host_records.inventory(driver, instance.install_dir)
        plans = layout.archive_plan(found)
        out.write("\n".join(f"{plan.name}: {', '.join(plan.paths)}" for plan in plans))
    files = []
    for plan in plans:
        with _step(backup, f"archive {plan.name}", key=f"archive:{plan.name}") as out:

            def progress(name: str, size: int, out=out) -> None:
                out.progress(size)
                if on_progress is not None:
                    on_progress(name, size)

            entry = stream_from_node(
                driver,
                argv=create_gz_argv(instance.install_dir, plan.paths),
                writer=writer,
                name=plan.name,
                paths=plan.paths,
                encrypt_to=recipients,
                on_progress=progress,
            )
            out.progress(entry.size, entry.size)
            files.append(entry)
    with _step(backup, "record the node's state", key="host-state"):
        text = host_records.host_state(driver, instance, started)
        files.append(write_small(writer, layout.HOST_STATE, text.encode()))
        if found.is_git_checkout:
            text = host_records.git_state(driver, instance.install_dir)
            files.append(write_small(writer, layout.GIT_STATE, text.encode()))
    return files


def _step(backup: Backup, name: str, *, key: str):
    """A step of the backup's progress record (instances.operations.progress)."""
    return progress.step(
        kind=OperationKind.BACKUP,
        operation_id=backup.pk,
        name=name,
        key=key,
        secrets=secret_values(backup.instance),
        describe=_describe_briefly,
    )


def _describe_briefly(error: BaseException) -> str:
    return error.message if isinstance(error, CCPError) else f"{type(error).__name__}: {error}"


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
    failed = _write(
        fence,
        lambda: Backup.objects.filter(pk=backup.pk, status__in=[BackupStatus.PENDING, BackupStatus.RUNNING]).update(
            **{name: getattr(backup, name) for name in fields}
        ),
        what="the backup's failure",
    )
    log.warning("Backup #%s of %s failed: %s", backup.pk, backup.instance_id, message)
    if failed:
        notify_backup_failed(backup)


def notify_backup_failed(backup: Backup) -> None:
    instance = backup.instance
    notify(
        NotificationEvent.BACKUP_FAILED,
        title=f"{backup.get_label_display()} backup #{backup.pk} of {instance} failed",
        body=f"{backup.get_label_display()} backup #{backup.pk} of {instance} (node {instance.node}) failed: "
        f"{backup.error}",
        url=reverse("admin:instances_backup_change", args=[backup.pk]),
        instance=instance,
        dedupe_key=f"backup-{backup.pk}",
    )


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
    setting = "CCP_BACKUP_STORAGE" if settings.CCP_BACKUP_STORAGE else "BACKUP_ROOT"
    root = Path(settings.CCP_BACKUP_STORAGE or settings.BACKUP_ROOT)
    try:
        usage = shutil.disk_usage(root)
        free = f"{filesizeformat(usage.free)} free of {filesizeformat(usage.total)}"
    except OSError:
        free = "free space unknown"
    where = f" while writing {error.filename}" if error.filename else ""
    log.warning("Backup disk full under %s%s (%s)", root, where, free)
    return (
        f"The panel's backup disk is full: no space left under {setting} {root}{where} ({free} now that "
        f"the partial backup was removed). Free space there, or move {setting} to a larger disk, then back "
        "up again."
    )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _user_or_none(user):
    return user if user is not None and getattr(user, "is_authenticated", False) else None
