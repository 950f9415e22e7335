"""Workers on several hosts: two real Celery workers, each with its own CCP_VAR_DIR and its own queue and
no shared local backup folder, share backups only through the bucket (a real moto_server). A backup one
takes, the other verifies and restores; a worker killed with SIGKILL mid-upload leaves no backup listed
as complete, and what it uploaded is removed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from django.utils import timezone
from django_celery_results.models import TaskResult

from instances.backups import layout
from instances.backups.restore import backup_restore_request
from instances.backups.retention import backups_prune
from instances.backups.services import backup_request
from instances.backups.storage import backup_storage
from instances.choices import BackupStatus, RestoreStatus
from instances.models import Backup, Restore
from instances.operations.models import InstanceLock
from instances.operations.reconcile import reconcile_stale_locks
from tests.testbed.s3 import CREDENTIALS

from .helpers import CONFIG_FILES, TOPS, give_to_node_account, local_sums
from .helpers import vandalise_lightly as vandalise

pytestmark = [pytest.mark.testbed, pytest.mark.timeout(300)]
DONE_BACKUP = [BackupStatus.SUCCEEDED, BackupStatus.FAILED]
RUNNING_RESTORE = [RestoreStatus.PENDING, RestoreStatus.RUNNING]
REPO = Path(__file__).resolve().parents[2]


class Worker:
    """`celery worker` in its own process group, on one queue, with its own var folder."""

    def __init__(self, settings, tmp_path: Path, name: str, *, identity: str = ""):
        self.name, self.queue = name, f"{settings.CELERY_TASK_DEFAULT_QUEUE}-{name}"
        self.var_dir = tmp_path / f"var-{name}"
        self.var_dir.mkdir()
        self.log = tmp_path / f"worker-{name}.log"
        db = settings.DATABASES["default"]
        env = {
            **os.environ,
            **CREDENTIALS,
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
            "DJANGO_SETTINGS_MODULE": "ccp.test_settings",
            "SECRET_KEY": settings.SECRET_KEY,
            "CCP_ENCRYPTION_KEYS": ",".join(settings.CCP_ENCRYPTION_KEYS),
            "CCP_VAR_DIR": str(self.var_dir),
            "CCP_BACKUP_STORAGE": settings.CCP_BACKUP_STORAGE,
            "CCP_S3_ENDPOINT_URL": settings.CCP_S3_ENDPOINT_URL,
            "CCP_BACKUP_AGE_RECIPIENTS": ",".join(settings.CCP_BACKUP_AGE_RECIPIENTS),
            "CCP_BACKUP_AGE_IDENTITY_FILE": identity,
        }
        env.pop("BACKUP_ROOT", None)
        self.process = subprocess.Popen(
            [
                sys.executable,
                *("-m", "celery", "-A", "ccp", "worker", "--queues", self.queue, "--hostname", f"{name}@%h"),
                *("--pool=threads", "--concurrency=2", "--loglevel=INFO", "--without-mingle", "--without-gossip"),
            ],
            cwd=REPO,
            env=env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self, sig=signal.SIGTERM) -> None:
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, sig)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def files(self) -> list[Path]:
        return [path for path in self.var_dir.rglob("*") if path.is_file()]


def wait_for(predicate, what: str, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while not (found := predicate()):
        assert time.monotonic() < deadline, what
        time.sleep(0.2)
    return found


def worker_of(task_id: str) -> str:
    return wait_for(
        lambda: TaskResult.objects.filter(task_id=task_id).values_list("worker", flat=True).first(), "no task result"
    )


def test_a_backup_taken_by_one_worker_is_verified_and_restored_by_another(
    transactional_db, s3_stack_tenant, s3_storage, age_keys, settings, tmp_path
):
    tenant = s3_stack_tenant
    before = local_sums(tenant.path, TOPS)
    # A takes backups and holds no identity (encrypting needs only the public key); B holds it.
    a = Worker(settings, tmp_path, "site-a")
    b = Worker(settings, tmp_path, "site-b", identity=str(age_keys))
    try:
        settings.CCP_NODE_QUEUES = {tenant.node.name: a.queue}
        backup = backup_request(instance=tenant.instance)
        backup = wait_for(
            lambda: Backup.objects.filter(
                pk=backup.pk, status__in=[BackupStatus.SUCCEEDED, BackupStatus.FAILED]
            ).first(),
            "the backup did not finish",
        )
        assert backup.status == BackupStatus.SUCCEEDED, backup.error
        assert worker_of(backup.task_id).startswith("site-a@")
        assert backup.manifest["config-files.tar.gz"]["encrypted"] is True

        vandalise(tenant.path)
        settings.CCP_NODE_QUEUES = {tenant.node.name: b.queue}
        restore = backup_restore_request(backup=backup)
        restore = wait_for(
            lambda: (
                Restore.objects.filter(pk=restore.pk)
                .exclude(status__in=[RestoreStatus.PENDING, RestoreStatus.RUNNING])
                .first()
            ),
            "the restore did not finish",
            timeout=180,
        )
        assert restore.status == RestoreStatus.SUCCEEDED, f"{restore.error}\n{restore.log}"
        assert worker_of(restore.task_id).startswith("site-b@")
        assert "verifying backup" in restore.log
        backup.refresh_from_db()
        assert backup.verify_ok is True  # verified by B, from the bucket
        assert local_sums(tenant.path, TOPS) == before
        assert (tenant.path / ".env").read_bytes() == CONFIG_FILES[".env"]
    finally:
        a.stop()
        b.stop()
    # Neither worker kept a backup file on its own disk.
    assert [p for p in a.files() + b.files() if "backups" in p.parts] == []
    for worker in (a, b):
        assert "Traceback" not in worker.log.read_text(), worker.log.read_text()[-3000:]


def test_a_worker_killed_mid_upload_leaves_no_complete_backup_and_its_parts_are_swept(
    transactional_db, make_tenant, s3_storage, settings, tmp_path
):
    s3 = s3_storage
    tenant = make_tenant()
    # 48 MiB that compress to nothing: the upload runs in several 8 MiB parts, long enough to be killed.
    big = tenant.path / "mkdocs/docs/big.bin"
    with big.open("wb") as out:
        for _ in range(48):
            out.write(os.urandom(1 << 20))
    give_to_node_account(tenant.path)
    worker = Worker(settings, tmp_path, "doomed")
    root = f"ccp-backups/{layout.instance_backups_folder(node_name=tenant.node.name, slug=tenant.instance.slug)}"
    try:
        settings.CCP_NODE_QUEUES = {tenant.node.name: worker.queue}
        backup = backup_request(instance=tenant.instance)

        def uploading():
            client = s3.client()
            for upload in client.list_multipart_uploads(Bucket=s3.bucket, Prefix=root).get("Uploads", []):
                try:
                    listed = client.list_parts(Bucket=s3.bucket, Key=upload["Key"], UploadId=upload["UploadId"])
                except ClientError:  # that upload completed in between: the next one is looked at
                    continue
                if listed.get("Parts"):
                    return upload["Key"]
            return None

        # The whole upload may take a second: the worker runs in 50 ms steps and is looked at while it
        # is stopped, so the test cannot miss the moment, and the kill falls while a part is in the bucket.
        deadline = time.monotonic() + 120
        while True:
            os.killpg(worker.process.pid, signal.SIGSTOP)
            if uploading():
                break
            backup.refresh_from_db()
            assert backup.status not in DONE_BACKUP, f"the backup ended before it could be killed: {backup.status}"
            assert time.monotonic() < deadline, "the upload never started"
            os.killpg(worker.process.pid, signal.SIGCONT)
            time.sleep(0.05)
        worker.stop(signal.SIGKILL)
    finally:
        worker.stop()

    backup.refresh_from_db()
    assert backup.status == BackupStatus.RUNNING  # nobody is left to say otherwise
    assert backup.location and not backup_storage().is_complete(backup.location)
    assert not [key for key in s3.keys(s3.bucket, root) if key.endswith(layout.MANIFEST)]
    # What it sent is still in the bucket: the unfinished upload's parts (or, if the kill fell between two
    # files, the objects of the finished ones).
    assert s3.uploads(s3.bucket, root) or s3.keys(s3.bucket, root)

    # The reconciler declares the backup failed once its heartbeat is stale, and removes its parts;
    # the prune after the next backup finds nothing left to sweep.
    InstanceLock.objects.filter(instance=tenant.instance).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    reconcile_stale_locks()
    backup.refresh_from_db()
    assert backup.status == BackupStatus.FAILED and backup.error.startswith("Interrupted")
    backups_prune(instance=tenant.instance)
    assert s3.keys(s3.bucket, root) == [] and s3.uploads(s3.bucket, root) == []
    assert not Backup.objects.filter(instance=tenant.instance, status=BackupStatus.SUCCEEDED).exists()
