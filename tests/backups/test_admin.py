"""The admin: Backup list and actions, restore confirmation, MANIFEST.txt download, Instance column."""

from __future__ import annotations

import re

import pytest
from django.contrib.admin import helpers

from instances.choices import BackupStatus
from instances.models import Backup, Restore
from instances.operations.models import InstanceLock

from .helpers import fake_backup

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/instances/backup/"


def test_backup_list_shows_label_size_age_and_verification(client, operator, make_instance, backup_root):
    instance = make_instance()
    backup = fake_backup(instance, backup_root)
    Backup.objects.filter(pk=backup.pk).update(verify_ok=False, verify_error="mkdocs.tar.gz is corrupted")
    client.force_login(operator)
    page = client.get(CHANGELIST).content.decode()
    assert instance.slug in page and "Manual" in page and "bytes" in page
    assert "FAILED" in page and "mkdocs.tar.gz is corrupted" in page
    assert f"/admin/instances/backup/{backup.pk}/manifest/" in page


def test_manifest_download(client, viewer, make_instance, backup_root):
    backup = fake_backup(make_instance(), backup_root)
    client.force_login(viewer)
    answer = client.get(f"/admin/instances/backup/{backup.pk}/manifest/")
    assert answer.status_code == 200
    assert b"".join(answer.streaming_content) == (backup_root / backup.location / "MANIFEST.txt").read_bytes()
    assert "attachment" in answer["Content-Disposition"] and "MANIFEST.txt" in answer["Content-Disposition"]


def test_verify_action(client, operator, make_instance, backup_root):
    backup = fake_backup(make_instance(), backup_root)
    (backup_root / backup.location / "host-state.txt").unlink()
    client.force_login(operator)
    answer = client.post(
        CHANGELIST, {"action": "verify_selected", helpers.ACTION_CHECKBOX_NAME: [backup.pk]}, follow=True
    )
    assert "host-state.txt is missing" in answer.content.decode()
    backup.refresh_from_db()
    assert backup.verify_ok is False


def test_restore_asks_for_confirmation_naming_what_is_overwritten(client, operator, make_instance, backup_root):
    instance = make_instance()
    backup = fake_backup(instance, backup_root)
    client.force_login(operator)
    data = {"action": "restore_selected", helpers.ACTION_CHECKBOX_NAME: [backup.pk]}
    page = client.post(CHANGELIST, data)
    assert page.status_code == 200
    text = page.content.decode()
    assert f"{instance.install_dir}/mkdocs/" in text and "overwrites" in text
    assert f'name="{helpers.ACTION_CHECKBOX_NAME}" value="{backup.pk}"' in text
    assert not Restore.objects.exists()

    done = client.post(CHANGELIST, {**data, "post": "yes"}, follow=True)
    restore = Restore.objects.get(backup=backup)
    assert f"Restore #{restore.pk}" in done.content.decode()
    assert InstanceLock.objects.get(instance=instance).operation_id == restore.pk


def test_restore_is_not_offered_without_the_permission(client, viewer, make_instance, backup_root):
    backup = fake_backup(make_instance(), backup_root)
    client.force_login(viewer)
    page = client.get(CHANGELIST).content.decode()
    assert "restore_selected" not in page and "verify_selected" not in page
    client.post(CHANGELIST, {"action": "restore_selected", helpers.ACTION_CHECKBOX_NAME: [backup.pk], "post": "yes"})
    assert not Restore.objects.exists()


def test_back_up_now_on_the_instance_changelist(client, operator, make_instance):
    first, second = make_instance(), make_instance()
    client.force_login(operator)
    answer = client.post(
        "/admin/instances/instance/",
        {"action": "back_up_now", helpers.ACTION_CHECKBOX_NAME: [first.pk, second.pk]},
        follow=True,
    )
    assert "Queued 2 backup(s)" in answer.content.decode()
    assert Backup.objects.filter(status=BackupStatus.PENDING, label="manual").count() == 2
    again = client.post(
        "/admin/instances/instance/", {"action": "back_up_now", helpers.ACTION_CHECKBOX_NAME: [first.pk]}, follow=True
    )
    assert "is busy" in again.content.decode()


def test_instance_changelist_shows_the_last_backup_age(client, operator, make_instance, backup_root):
    backed_up, _never_backed_up = make_instance(), make_instance()
    fake_backup(backed_up, backup_root)
    Backup.objects.create(instance=backed_up, status=BackupStatus.FAILED)
    client.force_login(operator)
    page = client.get("/admin/instances/instance/").content.decode()
    assert "Last backup" in page
    cells = re.findall(r'<td class="field-last_backup">([^<]*)</td>', page)
    assert len(cells) == 2 and "never" in cells
    assert any(cell.endswith("ago (last attempt failed)") for cell in cells) and "never" in cells
