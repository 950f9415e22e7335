"""Restore: put a backup's mkdocs/, configs/, nginx/ and top-level config files back on its instance.

    verify the backup → unpack each archive into <install_dir>/.ccp-restore-<id>/new on the node →
    check the unpacked files against the archives' member hashes → swap each top-level entry (rename
    the old one aside, rename the new one in) → check the files in place on the node (a mismatch
    swaps the old ones back) → remove the old ones → `docker compose up -d --wait --force-recreate`.

Until the swap the instance is untouched. Containers are recreated because a bind mount keeps
showing the directory it was started with, not the one renamed into its place.
"""

from __future__ import annotations

import logging
import posixpath
import uuid
from contextlib import contextmanager

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ccp.audit import audit_log
from ccp.errors import CCPError
from instances.attention import attention_raise, attention_resolve_by
from instances.choices import BackupStatus, RestoreStatus
from instances.commands import backup as scripts
from instances.commands.compose import compose_argv
from instances.commands.files import mkdir_argv, remove_argv
from instances.commands.tar import extract_gz_argv
from instances.drivers import driver_for
from instances.models import Backup, Restore
from instances.operations.choices import OperationKind, StepStatus
from instances.operations.db import db_retry
from instances.operations.enqueue import enqueue_on_commit, operation_withdraw
from instances.operations.locks import Fence, LockLost, lock_acquire, lock_release
from instances.operations.node_lock import NodeLock
from instances.operations.progress import StepSequence, step_record
from instances.operations.run import operation_claim, run_operation
from instances.redaction import secret_values

from . import encryption, layout
from .archive import SYMLINK, HashingReader, Progress, member_hashes, stream_to_node
from .services import verify_problems
from .storage import backup_storage

log = logging.getLogger(__name__)

# Directory archives replace whole directories; config-files.tar.gz replaces single files.
DIRECTORY_ARCHIVES = (layout.MKDOCS, layout.CONFIGS_AND_NGINX)
MAX_NAMED = 10


class RestoreError(CCPError):
    pass


class HalfRestored(RestoreError):
    """The swap happened and could not be undone: the instance needs an operator."""


def restore_targets(backup: Backup) -> list[str]:
    """What a restore of this backup overwrites, relative to the install directory (directories end in /)."""
    targets = []
    for archive in layout.RESTORABLE:
        suffix = "/" if archive in DIRECTORY_ARCHIVES else ""
        targets += [name + suffix for name in (backup.manifest or {}).get(archive, {}).get("paths", [])]
    return targets


@transaction.atomic
def backup_restore_request(*, backup: Backup, user=None, enqueue: bool = True) -> Restore:
    """Create a Restore row and take the instance lock in one transaction, then queue the task.
    Raises Conflict (409) when the instance is busy, CCPError when the backup cannot be restored."""
    backup = Backup.objects.select_related("instance").get(pk=backup.pk)
    if backup.status != BackupStatus.SUCCEEDED:
        raise CCPError(
            f"Backup #{backup.pk} is {backup.get_status_display().lower()}; only a complete backup can be restored."
        )
    if backup.verify_ok is False:
        raise CCPError(f"Backup #{backup.pk} failed verification ({backup.verify_error}); it cannot be restored.")
    if not restore_targets(backup):
        raise CCPError(f"Backup #{backup.pk} holds nothing a restore puts back.")
    restore = Restore.objects.create(
        backup=backup,
        source=backup.location,
        instance=backup.instance,
        requested_by=user if user is not None and user.is_authenticated else None,
    )
    lock_acquire(instance=backup.instance, kind=OperationKind.RESTORE, operation_id=restore.pk)
    audit_log(
        user=user,
        obj=backup.instance,
        action="changed",
        message=f"Requested restore #{restore.pk} of backup #{backup.pk} ({backup.location}).",
    )
    if enqueue:
        restore.task_id = str(uuid.uuid4())
        restore.save(update_fields=["task_id"])
        enqueue_on_commit(
            "instances.backups.tasks.backup_restore_task",
            restore.pk,
            task_id=restore.task_id,
            withdraw=lambda: operation_withdraw(
                model=Restore,
                operation_id=restore.pk,
                pending=RestoreStatus.PENDING,
                instance_id=backup.instance_id,
                kind=OperationKind.RESTORE,
            ),
        )
    return restore


@transaction.atomic
def restore_cancel(*, restore: Restore, user=None) -> Restore:
    """Cancel a restore that has not started: the row ends cancelled, the instance's lock is released.
    A running restore cannot be stopped part-way (it may be swapping files)."""
    restore = Restore.objects.select_for_update().select_related("instance").get(pk=restore.pk)
    if restore.status != RestoreStatus.PENDING:
        raise CCPError(
            f"Restore #{restore.pk} is {restore.get_status_display().lower()}; only a pending restore can be cancelled."
        )
    restore.status, restore.finished_at, restore.error = (
        RestoreStatus.CANCELLED,
        timezone.now(),
        "Cancelled before it started.",
    )
    restore.save(update_fields=["status", "finished_at", "error"])
    lock_release(instance_id=restore.instance_id, kind=OperationKind.RESTORE, operation_id=restore.pk)
    audit_log(user=user, obj=restore.instance, action="changed", message=f"Cancelled pending restore #{restore.pk}.")
    return restore


def backup_restore_run(*, restore_id: int, on_progress: Progress | None = None) -> str:
    """Run a requested restore to its end (the task calls this). Runs once: only the caller that moves
    the row from pending to running goes on."""
    restore, claimed = operation_claim(
        Restore,
        restore_id,
        pending=RestoreStatus.PENDING,
        running=RestoreStatus.RUNNING,
        select_related=("instance__node", "backup"),
    )
    if restore is None:
        return "missing"
    if not claimed:
        return restore.status

    def refused() -> str:
        _finish(restore, RestoreStatus.INTERRUPTED, "The instance lock was taken away before the restore started.")
        return restore.status

    steps = StepSequence(kind=OperationKind.RESTORE, operation_id=restore.pk, secrets=secret_values(restore.instance))

    def work(heartbeat) -> str:
        fence = heartbeat.fence
        try:
            driver = driver_for(restore.instance.node)
            with NodeLock(
                driver=driver,
                install_dir=restore.instance.install_dir,
                kind=OperationKind.RESTORE,
                operation_id=restore.pk,
            ):
                _restore(restore, driver, on_progress, steps, fence)
        except LockLost:
            raise
        except HalfRestored as error:
            steps.end(StepStatus.FAILED, error.message)
            _finish(restore, RestoreStatus.FAILED, error.message, fence)
            attention_raise(
                instance=restore.instance,
                reason=f"Restore #{restore.pk} failed half-way: {error.message}",
                operation_kind="restore",
                operation_id=restore.pk,
            )
        except CCPError as error:
            steps.end(StepStatus.FAILED, error.message)
            _finish(restore, RestoreStatus.FAILED, error.message, fence)
        except Exception as error:
            log.exception("Restore #%s failed unexpectedly", restore.pk)
            steps.end(StepStatus.FAILED, f"{type(error).__name__}: {error}")
            _finish(restore, RestoreStatus.FAILED, f"{type(error).__name__}: {error}", fence)
        else:
            steps.end(StepStatus.SUCCEEDED)
            _finish(restore, RestoreStatus.SUCCEEDED, "", fence)
            resolved = attention_resolve_by(instance=restore.instance, operation=f"restore #{restore.pk} succeeded")
            if resolved:
                note = f"resolved {resolved} attention record(s) of {restore.instance}"
                _log(restore, note, fence)
                step_record(
                    kind=OperationKind.RESTORE,
                    operation_id=restore.pk,
                    name="resolve attention",
                    key="resolve_attention",
                    status=StepStatus.SUCCEEDED,
                    output=note,
                )
        return restore.status

    return run_operation(kind=OperationKind.RESTORE, row=restore, work=work, refused=refused)


def _restore(
    restore: Restore, driver, on_progress: Progress | None, steps: StepSequence, fence: Fence | None = None
) -> None:
    """Each `_step` is a line of the restore's log and a step of its progress record; each is also a safe
    point: a restore whose lock was taken over stops there (LockLost)."""

    def _step(restore: Restore, text: str, *, key: str, bytes_total: int | None = None) -> None:
        _log(restore, text, fence)
        steps.next(text, key=key, bytes_total=bytes_total)

    def sent(name: str, size: int) -> None:
        steps.current.progress(size)
        if on_progress is not None:
            on_progress(name, size)

    backup, instance = restore.backup, restore.instance
    if backup is None:
        raise RestoreError("The backup was removed before the restore started.")
    _step(restore, f"verifying backup #{backup.pk} ({backup.location})", key="verify")
    problems = verify_problems(backup)
    Backup.objects.filter(pk=backup.pk).update(
        verified_at=timezone.now(), verify_ok=not problems, verify_error="; ".join(problems)
    )
    if problems:
        raise RestoreError(f"Backup #{backup.pk} failed verification, nothing was changed: {'; '.join(problems)}")

    archives = [name for name in layout.RESTORABLE if name in backup.manifest]
    identities = encryption.identities() if any(backup.manifest[a].get("encrypted") for a in archives) else []
    names = [name for archive in archives for name in backup.manifest[archive].get("paths", [])]
    for name in names:
        if not name or "/" in name or name in (".", ".."):
            raise RestoreError(f"Backup #{backup.pk} names {name!r}, which is not a top-level entry.")
    storage = backup_storage()
    expected: dict[str, str] = {}
    for archive in archives:
        with _plaintext(storage, backup, archive, identities) as (source, _stored):
            expected.update(member_hashes(source))

    staging = posixpath.join(instance.install_dir, f".ccp-restore-{restore.pk}")
    incoming = posixpath.join(staging, "new")
    timeout = settings.CCP_BACKUP_COMMAND_TIMEOUT
    swapped = False
    # 0700: the staging folder holds the tenant's .env (restored, and the previous one set aside)
    driver.run(mkdir_argv(staging, mode="0700"), timeout=timeout, check=True)
    driver.run(mkdir_argv(incoming, parents=False, mode="0700"), timeout=timeout, check=True)
    try:
        for archive in archives:
            size = backup.manifest[archive]["size"]
            _step(restore, f"unpacking {archive} into {incoming}", key=f"unpack:{archive}", bytes_total=size)
            with _plaintext(storage, backup, archive, identities) as (source, stored):
                stream_to_node(driver, source=source, name=archive, on_progress=sent, argv=extract_gz_argv(incoming))
                stored.drain()  # age's last chunk, or gzip padding tar left unread
            steps.current.progress(size)
            if stored.digest.hexdigest() != backup.manifest[archive]["sha256"]:
                raise RestoreError(f"{archive} changed while it was being restored; nothing was changed.")
        _step(restore, "checking the unpacked files on the node", key="check-unpacked")
        _check(
            driver.checksums(names, base=incoming),
            expected,
            "The unpacked files differ from the backup on the node, nothing was changed",
        )
        _step(restore, "swapping in: " + ", ".join(restore_targets(backup)), key="swap")
        swapped = True  # from here on, until the script says otherwise, the node may be half-way
        result = driver.run(scripts.swap_argv(instance.install_dir, staging, names), timeout=timeout)
        if result.exit_code in (scripts.SWAP_NOTHING_MOVED, scripts.SWAP_PUT_BACK):
            swapped = False
            raise RestoreError(
                "Swapping the restored files in failed and the previous files were kept: "
                + result.stderr.decode(errors="replace").strip()[-300:]
            )
        if not result.ok:
            raise RestoreError(
                f"Swapping the restored files in failed (exit code {result.exit_code}): "
                + result.stderr.decode(errors="replace").strip()[-300:]
            )
        _step(restore, "checking the restored files in place on the node", key="check-in-place")
        try:
            _check(
                driver.checksums(names, base=instance.install_dir),
                expected,
                "The restored files differ from the backup on the node; the previous files were put back",
            )
        except RestoreError:
            driver.run(
                scripts.undo_swap_argv(instance.install_dir, staging, names),
                timeout=timeout,
                check=True,
            )
            swapped = False
            raise
    except BaseException as error:
        if not swapped:
            _remove_quietly(driver, staging)
            raise
        reason = error.message if isinstance(error, CCPError) else f"{type(error).__name__}: {error}"
        raise HalfRestored(
            f"The restore stopped half-way and could not put the previous files back; they are "
            f"kept in {staging}/old on the node. {reason}"
        ) from error
    driver.run(remove_argv(staging, recursive=True), timeout=timeout, check=True)

    _step(restore, "starting the stack: docker compose up -d --wait --force-recreate", key="start")
    try:
        driver.run(
            compose_argv(instance, "up", "-d", "--wait", "--force-recreate"),
            cwd=instance.install_dir,
            timeout=settings.CCP_RESTORE_UP_TIMEOUT,
            check=True,
        )
    except CCPError as error:
        raise RestoreError(f"The files were restored and checked, but the stack did not come up: {error.message}")
    _log(restore, "done", fence)


@contextmanager
def _plaintext(storage, backup: Backup, archive: str, identities: list):
    """(a readable of the archive's plaintext, the HashingReader of its stored bytes)."""
    with storage.open(backup.location, archive) as raw:
        stored = HashingReader(raw)
        if backup.manifest[archive].get("encrypted"):
            with encryption.Decrypted(stored, archive, identities) as plain:
                yield plain, stored
        else:
            yield stored, stored


def _check(actual: dict[str, str], expected: dict[str, str], what: str) -> None:
    links = {path for path, digest in expected.items() if digest == SYMLINK}
    missing = sorted(set(expected) - set(actual) - links)
    extra = sorted(set(actual) - set(expected))
    changed = sorted(
        path for path in expected if path in actual and path not in links and actual[path] != expected[path]
    )
    parts = [
        f"{label}: {', '.join(paths[:MAX_NAMED])}{' …' if len(paths) > MAX_NAMED else ''}"
        for label, paths in (("missing", missing), ("different", changed), ("unexpected", extra))
        if paths
    ]
    if parts:
        raise RestoreError(f"{what} ({'; '.join(parts)}).")


def _log(restore: Restore, text: str, fence: Fence | None = None) -> None:
    """A line of the restore's log; also a safe point: a restore whose lock was taken over stops here (LockLost)."""
    restore.log += f"{timezone.now():%H:%M:%S} {text}\n"
    _write(fence, lambda: Restore.objects.filter(pk=restore.pk).update(log=restore.log), what="the restore's log")


def _finish(restore: Restore, status: str, error: str, fence: Fence | None = None) -> None:
    restore.status, restore.error, restore.finished_at = status, error, timezone.now()
    _write(
        fence,
        lambda: Restore.objects.filter(pk=restore.pk, status=RestoreStatus.RUNNING).update(
            status=status, error=error, finished_at=restore.finished_at
        ),
        what="the restore's result",
    )


def _write(fence: Fence | None, fn, *, what: str):
    if fence is not None:
        fence.check()
        return fence.write(fn, what=what)
    return db_retry(fn, what=what)


def _remove_quietly(driver, path: str) -> None:
    try:
        driver.run(remove_argv(path, recursive=True), timeout=settings.CCP_BACKUP_COMMAND_TIMEOUT)
    except CCPError as error:
        log.warning("Could not remove %s on the node: %s", path, error.message)
