"""A recognisable secret and private key go through a tenant's whole life (check, health, preview,
render, quick upgrade, backup, restore, on a real node with a real Celery worker), then every place a
user or an operator can read is searched for them: every API answer, the OpenAPI schema, the admin
pages of every object involved, the audit log, the upgrade's step outputs, the Celery result rows,
the web and worker logs. The backup files, which must hold the .env, must be readable by the panel's
user only."""

from __future__ import annotations

import logging
import stat
import time
import uuid

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client
from django_celery_results.models import TaskResult

from instances.choices import BackupStatus
from instances.models import Backup, Instance, Restore
from instances.operations.models import OperationStep
from tests.testbed.sshd import SSHNode
from upgrades.models import Upgrade

pytestmark = [pytest.mark.testbed]


def _wait(predicate, timeout: float = 180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError("timed out waiting for the worker")


def _key_fragments(pem: str) -> list[str]:
    """Distinctive pieces of the private key body (any one of them showing up is a leak)."""
    body = "".join(line for line in pem.splitlines() if line and not line.startswith("-----"))
    return [body[i : i + 24] for i in range(40, len(body) - 24, 60)]


@pytest.mark.django_db(transaction=True)
def test_secrets_never_leak(
    make_tenant,
    testbed_node,
    ssh_node: SSHNode,
    celery_worker_thread,
    api,
    operator,
    superuser,
    settings,
    tmp_path,
    caplog,
):
    caplog.set_level(logging.DEBUG)
    settings.BACKUP_ROOT = tmp_path / "backups"
    secret = f"LEAKCANARY{uuid.uuid4().hex}"
    fragments = _key_fragments(ssh_node.client_key)
    tenant = make_tenant()
    slug, node_name = tenant.instance.slug, testbed_node.name
    root, ops = api(superuser), api(operator)
    answers: list[str] = []

    def keep(response) -> None:
        assert response.status_code < 500, response.content
        answers.append(response.content.decode(errors="replace"))

    keep(root.patch(f"/api/v1/nodes/{node_name}/", {"private_key": ssh_node.client_key}, format="json"))
    keep(root.patch(f"/api/v1/instances/{slug}/", {"secrets": {"APP_SECRET": secret}}, format="json"))
    env_file = tenant.path / ".env"  # the tenant's .env holds it too, as after the next release upgrade
    env_file.write_bytes(
        b"".join(
            line if not line.startswith(b"APP_SECRET=") else f"APP_SECRET={secret}\n".encode()
            for line in env_file.read_bytes().splitlines(keepends=True)
        )
    )
    keep(ops.post(f"/api/v1/nodes/{node_name}/check/"))
    keep(ops.post(f"/api/v1/instances/{slug}/check-health/"))
    keep(ops.get(f"/api/v1/instances/{slug}/preview/?release=v1"))
    keep(ops.get(f"/api/v1/instances/{slug}/render/?release=v1"))  # operators see [redacted]

    # The secret reaches the node: a quick upgrade (whose steps print .env handling), a backup, a restore.
    queued = ops.post(f"/api/v1/instances/{slug}/upgrades/", {"mode": "image_only", "image_tag": "v2"}, format="json")
    keep(queued)
    upgrade = Upgrade.objects.get(pk=queued.json()["id"])
    _wait(lambda: Upgrade.objects.get(pk=upgrade.pk).is_final)
    assert secret.encode() in tenant.env()  # it really is on the node, so finding it nowhere else means something
    keep(ops.post(f"/api/v1/instances/{slug}/backups/", {"label": "manual"}, format="json"))
    backup = _wait(lambda: Backup.objects.filter(instance__slug=slug, status=BackupStatus.SUCCEEDED).first())
    keep(ops.post(f"/api/v1/backups/{backup.pk}/restore/", {"confirm": True}, format="json"))
    restore = _wait(lambda: Restore.objects.filter(backup=backup).exclude(status__in=["pending", "running"]).first())

    # Every API answer about these objects, as an operator and as a superuser, and the schema.
    for client in (ops, root):
        for url in (
            "/api/v1/nodes/",
            f"/api/v1/nodes/{node_name}/",
            "/api/v1/instances/",
            f"/api/v1/instances/{slug}/",
            f"/api/v1/instances/{slug}/preview/?release=v1",
            "/api/v1/releases/",
            "/api/v1/upgrades/",
            f"/api/v1/upgrades/{upgrade.pk}/",
            "/api/v1/backups/",
            f"/api/v1/backups/{backup.pk}/",
            "/api/schema/",
            "/api/v1/",
        ):
            keep(client.get(url))
    # Admin pages of every object involved, as a superuser (who sees the most).
    admin = Client()
    admin.force_login(superuser)
    instance = Instance.objects.get(slug=slug)
    for url in (
        "/admin/instances/node/",
        f"/admin/instances/node/{testbed_node.pk}/change/",
        "/admin/instances/instance/",
        f"/admin/instances/instance/{instance.pk}/change/",
        f"/admin/instances/instance/{instance.pk}/preview/?release=v1",
        "/admin/instances/backup/",
        f"/admin/instances/backup/{backup.pk}/change/",
        "/admin/instances/restore/",
        f"/admin/instances/restore/{restore.pk}/change/",
        "/admin/upgrades/upgrade/",
        f"/admin/upgrades/upgrade/{upgrade.pk}/change/",
        "/admin/admin/logentry/",
        "/admin/django_celery_results/taskresult/",
        "/admin/fleet/",
    ):
        response = admin.get(url)
        assert response.status_code == 200, url
        answers.append(response.content.decode(errors="replace"))
    for result in TaskResult.objects.all():
        response = admin.get(f"/admin/django_celery_results/taskresult/{result.pk}/change/")
        answers.append(response.content.decode(errors="replace"))

    places = {
        "API answers, schema and admin pages": "\n".join(answers),
        "audit log": "\n".join(LogEntry.objects.values_list("change_message", flat=True)),
        "operation step outputs": "\n".join(f"{s.name} {s.output}" for s in OperationStep.objects.all()),
        "upgrade and backup errors": "\n".join(
            [
                *Upgrade.objects.values_list("error", flat=True),
                *Backup.objects.values_list("error", flat=True),
                *Restore.objects.values_list("log", flat=True),
            ]
        ),
        "Celery result rows": "\n".join(
            f"{r.task_args} {r.task_kwargs} {r.result} {r.traceback}" for r in TaskResult.objects.all()
        ),
        "web and worker logs": caplog.text,
    }
    assert TaskResult.objects.exists() and OperationStep.objects.filter(kind="upgrade").exists() and caplog.text
    for place, text in places.items():
        assert secret not in text, f"the secret leaked into the {place}"
        leaked = [fragment for fragment in fragments if fragment in text]
        assert not leaked, f"the private key leaked into the {place}"

    folder = settings.BACKUP_ROOT
    for path in [folder, *folder.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), f"{path} is {mode:o}"
