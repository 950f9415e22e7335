"""The backup API: permissions, 202 + Location, 409 when busy, filters, verify, restore confirmation."""

from __future__ import annotations

from wsgiref.headers import Headers

import pytest

from instances.choices import BackupStatus
from instances.models import Backup, Restore
from instances.operations.models import InstanceLock

from .helpers import fake_backup

pytestmark = pytest.mark.django_db


def test_operator_backs_up_now_and_a_second_request_is_refused(api, operator, make_instance, backup_root):
    instance = make_instance()
    url = f"/api/v1/instances/{instance.slug}/backups/"
    answer = api(operator).post(url, {}, format="json")
    assert answer.status_code == 202, answer.content
    body = answer.json()
    assert body["label"] == "manual" and body["status"] == "pending" and body["instance"] == instance.slug
    assert answer["Location"] == body["url"] and body["url"].endswith(f"/api/v1/backups/{body['id']}/")
    Headers(list(answer.items()))  # a WSGI server refuses a header value that is not exactly a str
    assert InstanceLock.objects.get(instance=instance).operation_id == body["id"]

    busy = api(operator).post(url, {"label": "manual"}, format="json")
    assert busy.status_code == 409
    assert f"backup #{body['id']}" in busy.json()["detail"]
    assert Backup.objects.filter(instance=instance).count() == 1


def test_backing_up_needs_the_operate_permission(api, viewer, make_instance):
    instance = make_instance()
    assert api(viewer).post(f"/api/v1/instances/{instance.slug}/backups/", {}).status_code == 403
    assert api(None).post(f"/api/v1/instances/{instance.slug}/backups/", {}).status_code == 401
    assert (
        api(viewer).post(f"/api/v1/instances/{instance.slug}/backups/", {"label": "weekly"}, format="json").status_code
        == 403
    )


def test_unknown_label_is_a_400(api, operator, make_instance):
    instance = make_instance()
    answer = api(operator).post(f"/api/v1/instances/{instance.slug}/backups/", {"label": "weekly"}, format="json")
    assert answer.status_code == 400 and "label" in answer.json()


def test_list_and_filter_backups(api, viewer, make_instance, backup_root):
    first, second = make_instance(), make_instance()
    fake_backup(first, backup_root, label="scheduled")
    fake_backup(second, backup_root, label="manual")
    Backup.objects.create(instance=second, label="manual", status=BackupStatus.FAILED, error="boom")

    client = api(viewer)
    assert client.get("/api/v1/backups/").json()["count"] == 3
    assert client.get(f"/api/v1/backups/?instance={first.slug}").json()["count"] == 1
    assert client.get(f"/api/v1/backups/?node={second.node.name}&status=failed").json()["count"] == 1
    assert client.get("/api/v1/backups/?label=scheduled").json()["results"][0]["instance"] == first.slug
    assert api(None).get("/api/v1/backups/").status_code == 401


def test_verify_through_the_api(api, operator, viewer, make_instance, backup_root):
    backup = fake_backup(make_instance(), backup_root)
    assert api(viewer).post(f"/api/v1/backups/{backup.pk}/verify/").status_code == 403
    answer = api(operator).post(f"/api/v1/backups/{backup.pk}/verify/")
    assert answer.status_code == 200 and answer.json()["verify_ok"] is True

    (backup_root / backup.location / "mkdocs.tar.gz").write_bytes(b"not really gzip!")
    answer = api(operator).post(f"/api/v1/backups/{backup.pk}/verify/")
    assert answer.json()["verify_ok"] is False
    assert "mkdocs.tar.gz is corrupted" in answer.json()["verify_error"]


def test_restore_needs_permission_and_confirmation(api, operator, viewer, make_instance, backup_root):
    instance = make_instance()
    backup = fake_backup(instance, backup_root)
    url = f"/api/v1/backups/{backup.pk}/restore/"
    assert api(viewer).post(url, {"confirm": True}, format="json").status_code == 403

    unconfirmed = api(operator).post(url, {}, format="json")
    assert unconfirmed.status_code == 400
    assert unconfirmed.json()["will_overwrite"] == ["mkdocs/"]
    assert instance.install_dir in unconfirmed.json()["detail"]
    assert not Restore.objects.exists()

    answer = api(operator).post(url, {"confirm": True}, format="json")
    assert answer.status_code == 202
    restore = Restore.objects.get(backup=backup)
    assert answer.json()["restores"][0]["id"] == restore.pk and restore.requested_by == operator
    assert InstanceLock.objects.get(instance=instance).kind == "restore"
    assert api(operator).post(url, {"confirm": True}, format="json").status_code == 409


def test_a_failed_backup_cannot_be_restored(api, operator, make_instance):
    backup = Backup.objects.create(instance=make_instance(), status=BackupStatus.FAILED, error="boom")
    answer = api(operator).post(f"/api/v1/backups/{backup.pk}/restore/", {"confirm": True}, format="json")
    assert answer.status_code == 400 and "only a complete backup" in answer.json()["detail"]
