"""Backups and restores write the operation layer's progress record: a step per archive with the bytes
moved, growing while the archive streams and ending at the archive's size; the progress endpoint and
the admin page show them."""

from __future__ import annotations

import os
import time

import pytest

from instances.backups import layout
from instances.backups.restore import backup_restore_request, backup_restore_run
from instances.backups.services import backup_request, backup_run
from instances.backups.storage import backup_storage
from instances.choices import BackupStatus
from instances.operations.progress import operation_steps

pytestmark = [pytest.mark.testbed, pytest.mark.django_db(transaction=True)]

BIG = 3 * 1024 * 1024  # random, so gzip cannot shrink it: a dozen chunks of the stream


def test_a_backup_shows_its_archives_bytes_growing_and_ending_at_their_size(
    make_tenant, backup_root, api, viewer, operator, client
):
    tenant = make_tenant(extra={"mkdocs/docs/big.bin": os.urandom(BIG)})
    backup = backup_request(instance=tenant.instance, enqueue=False)
    reader = api(viewer)
    seen: list[int | None] = []

    def slow_network(name: str, size: int) -> None:
        # Each chunk arrives a little later (as over a slow link); meanwhile a client polls the endpoint.
        time.sleep(0.25)
        if name == layout.MKDOCS:
            steps = reader.get(f"/api/v1/backups/{backup.pk}/progress/").json()["steps"]
            running = [s for s in steps if s["status"] == "running"]
            assert [s["key"] for s in running] == [f"archive:{layout.MKDOCS}"]
            seen.append(running[0]["bytes_done"])

    assert backup_run(backup_id=backup.pk, on_progress=slow_network) == BackupStatus.SUCCEEDED
    backup.refresh_from_db()

    # While it streamed, the client saw the byte count grow (stored at most once a second).
    growing = [n for n in seen if n]
    assert len(set(growing)) >= 2 and growing == sorted(growing), seen
    # Each archive's step ends at the archive's size, as its MANIFEST.txt records it.
    data = reader.get(f"/api/v1/backups/{backup.pk}/progress/").json()
    assert data["status"] == "succeeded" and data["is_final"] and data["elapsed_seconds"] > 0
    archives = {s["key"].removeprefix("archive:"): s for s in data["steps"] if s["key"].startswith("archive:")}
    assert set(archives) == {name for name in backup.manifest if name.endswith(".tar.gz")}
    for name, step in archives.items():
        size = (backup_storage().folder(backup.location) / name).stat().st_size
        assert step["status"] == "succeeded" and step["bytes_done"] == step["bytes_total"] == size
        assert backup.manifest[name]["size"] == size
    assert archives[layout.MKDOCS]["bytes_done"] > BIG
    assert [s["key"] for s in data["steps"]][0] == "inventory" and data["steps"][-1]["key"] == "manifest"
    assert all(s["status"] == "succeeded" for s in data["steps"])

    # The admin page shows the same steps, polling the same endpoint.
    client.force_login(operator)
    page = client.get(f"/admin/instances/backup/{backup.pk}/change/").content.decode()
    assert f'data-url="/api/v1/backups/{backup.pk}/progress/"' in page and f"archive {layout.MKDOCS}" in page

    # A restore of it: a step per archive sent back, its bytes ending at the archive's size.
    restore = backup_restore_request(backup=backup, enqueue=False)
    status = backup_restore_run(restore_id=restore.pk)
    steps = list(operation_steps(kind="restore", operation_id=restore.pk))
    unpacked = {s.key.removeprefix("unpack:"): s for s in steps if s.key.startswith("unpack:")}
    assert set(unpacked) == {name for name in layout.RESTORABLE if name in backup.manifest}
    for name, step in unpacked.items():
        size = (backup_storage().folder(backup.location) / name).stat().st_size
        assert step.status == "succeeded" and step.bytes_done == step.bytes_total == size
    assert [s.key for s in steps][:1] == ["verify"] and "check-in-place" in [s.key for s in steps]
    # The last step carries the outcome of the restore.
    assert steps[-1].status == status, (status, [(s.key, s.status, s.output) for s in steps])
    data = reader.get(f"/api/v1/restores/{restore.pk}/progress/").json()
    assert data["step_total"] == len(steps) and data["status"] == status
    page = client.get(f"/admin/instances/restore/{restore.pk}/change/").content.decode()
    assert f'data-url="/api/v1/restores/{restore.pk}/progress/"' in page and "unpacking" in page
