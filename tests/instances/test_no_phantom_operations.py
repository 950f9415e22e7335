"""No phantom operations: a request made while the broker is down answers a JSON 503 with a sentence and
leaves nothing behind (no row, no lock), and every kind of pending operation can be cancelled through the
API and the admin. The broker is a Redis of the test's own (tests/testbed/services.py), stopped at will."""

import subprocess

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client
from django.urls import reverse

from instances.choices import BackupStatus, RestoreStatus
from instances.models import Backup, Restore
from instances.operations.models import InstanceLock
from upgrades.models import Upgrade

pytestmark = pytest.mark.django_db(transaction=True)


def _succeeded_backup(instance) -> Backup:
    """A complete backup row (a restore request reads only the row; the files are verified when it runs)."""
    return Backup.objects.create(
        instance=instance,
        status=BackupStatus.SUCCEEDED,
        location=f"{instance.node.name}/{instance.slug}/20260101T000000Z-manual",
        manifest={"mkdocs.tar.gz": {"paths": ["mkdocs"], "sha256": "0" * 64, "size": 1}},
    )


def _request(kind: str, client, instance):
    if kind == "upgrade":
        return client.post(
            f"/api/v1/instances/{instance.slug}/upgrades/", {"mode": "image_only", "image_tag": "v2"}, format="json"
        )
    if kind == "backup":
        return client.post(f"/api/v1/instances/{instance.slug}/backups/", {}, format="json")
    backup = Backup.objects.filter(instance=instance, status=BackupStatus.SUCCEEDED).first() or _succeeded_backup(
        instance
    )
    return client.post(f"/api/v1/backups/{backup.pk}/restore/", {"confirm": True}, format="json")


def _operations(instance) -> dict[str, int]:
    return {
        "upgrades": Upgrade.objects.filter(instance=instance).count(),
        "backups": Backup.objects.filter(instance=instance).exclude(status=BackupStatus.SUCCEEDED).count(),
        "restores": Restore.objects.filter(instance=instance).count(),
        "locks": InstanceLock.objects.filter(instance=instance).count(),
    }


NOTHING = {"upgrades": 0, "backups": 0, "restores": 0, "locks": 0}


@pytest.mark.parametrize("kind", ["upgrade", "backup", "restore"])
def test_broker_down_at_request_time_answers_503_and_leaves_nothing_behind(
    kind, private_broker, make_instance, operator, api
):
    instance = make_instance()
    client = api(operator)
    private_broker.stop()

    response = _request(kind, client, instance)

    assert response.status_code == 503, response.content
    assert response["Content-Type"] == "application/json"
    assert "task queue (the Celery broker) is not answering" in response.json()["detail"]
    assert _operations(instance) == NOTHING

    private_broker.start()  # back: the same request is accepted (nothing blocks the instance)
    assert _request(kind, client, instance).status_code == 202


@pytest.mark.parametrize("kind", ["upgrade", "backup", "restore"])
def test_a_send_refused_after_the_commit_withdraws_the_request(kind, private_broker, make_instance, operator, api):
    """The broker takes connections but refuses the message (out of memory): the row and the lock that
    were already committed are withdrawn before the 503 goes out."""
    instance = make_instance()
    _redis_cli(private_broker, "CONFIG", "SET", "maxmemory-policy", "noeviction")
    _redis_cli(private_broker, "CONFIG", "SET", "maxmemory", "1")

    response = _request(kind, api(operator), instance)

    assert response.status_code == 503, response.content
    assert "nothing was queued" in response.json()["detail"]
    assert _operations(instance) == NOTHING


def test_each_pending_kind_can_be_cancelled_through_the_api(private_broker, make_instance, operator, api):
    """No worker runs here: each request stays pending (as when the worker or broker is away)."""
    instance = make_instance()
    client = api(operator)

    upgrade = _request("upgrade", client, instance).json()
    assert client.post(f"/api/v1/upgrades/{upgrade['id']}/cancel/").status_code == 202
    backup = _request("backup", client, instance).json()
    answer = client.post(f"/api/v1/backups/{backup['id']}/cancel/")
    assert answer.status_code == 200 and answer.json()["status"] == "cancelled"
    restored = _request("restore", client, instance).json()
    answer = client.post(f"/api/v1/backups/{restored['id']}/cancel-restore/")
    assert answer.status_code == 200, answer.content

    assert Upgrade.objects.get(pk=upgrade["id"]).status == "cancelled"
    assert Backup.objects.get(pk=backup["id"]).status == BackupStatus.CANCELLED
    assert Restore.objects.get(instance=instance).status == RestoreStatus.CANCELLED
    assert not InstanceLock.objects.filter(instance=instance).exists()
    # Nothing pending is left to cancel: a sentence, not a traceback.
    again = client.post(f"/api/v1/backups/{backup['id']}/cancel/")
    assert again.status_code == 400
    assert again.json()["detail"] == f"Backup #{backup['id']} is cancelled; only a pending backup can be cancelled."


def test_pending_backups_and_restores_can_be_cancelled_in_the_admin(private_broker, make_instance, operator, api):
    instance = make_instance()
    client = Client()
    client.force_login(operator)

    backup = _request("backup", api(operator), instance).json()
    response = client.post(
        reverse("admin:instances_backup_changelist"), {"action": "cancel_selected", "_selected_action": [backup["id"]]}
    )
    assert response.status_code == 302
    assert Backup.objects.get(pk=backup["id"]).status == BackupStatus.CANCELLED

    _request("restore", api(operator), instance)
    restore = Restore.objects.get(instance=instance)
    response = client.post(
        reverse("admin:instances_restore_changelist"), {"action": "cancel_selected", "_selected_action": [restore.pk]}
    )
    assert response.status_code == 302
    assert Restore.objects.get(pk=restore.pk).status == RestoreStatus.CANCELLED
    assert not InstanceLock.objects.filter(instance=instance).exists()
    assert LogEntry.objects.filter(change_message=f"Cancelled pending restore #{restore.pk}.").exists()


def _redis_cli(server, *argv: str) -> None:
    subprocess.run(["redis-cli", "-p", str(server.port), *argv], check=True, capture_output=True, timeout=30)
