"""Shell injection: every string field that reaches a node command × at least 12 payloads.

Each value is set through the API as a superuser would (the most trusted, so the least validated,
path). A refused value (400) is fine. For every accepted value, the operations that use the field run
against a real node (sshd on loopback, a running tenant): node check, health check, preview, quick
upgrade, backup, restore. Afterwards no canary file may exist on the node or on the panel host (here
one machine: the node account's home, the install directory, /tmp and the panel's working directory).
"""

from __future__ import annotations

import os
import pwd
import uuid
from pathlib import Path

import pytest

from ccp.errors import CCPError
from instances.backups.restore import backup_restore_request, backup_restore_run
from instances.backups.services import backup_request, backup_run
from instances.choices import BackupStatus
from instances.drivers import close_all
from instances.health import instance_check_health
from instances.models import Instance, Node
from instances.node_checks import node_check
from instances.selectors import instance_preview_report
from upgrades.models import Release
from upgrades.services import upgrade_request, upgrade_run

pytestmark = [pytest.mark.testbed, pytest.mark.django_db]

TOKEN = uuid.uuid4().hex[:10]
CANARY_NAME = f"ccp-canary-{TOKEN}"
CANARY = f"/tmp/{CANARY_NAME}"

# At least 12 shapes an attacker would try; each, if interpreted by a shell, creates the canary.
PAYLOADS = [
    f"; touch {CANARY}",
    f"$(touch {CANARY})",
    f"`touch {CANARY}`",
    f"&& touch {CANARY}",
    f"\ntouch {CANARY}",
    f"-oProxyCommand=touch {CANARY}",
    f"'; touch {CANARY}; '",
    f'"; touch {CANARY}; "',
    f" x; touch {CANARY} ",
    f"ü€$(touch {CANARY})",
    f"../../../../..{CANARY}; touch {CANARY}",
    f"| touch {CANARY}",
    f"${{IFS}}touch${{IFS}}{CANARY}",
    f">{CANARY}",
    f"--output={CANARY}",
]

# Values the payloads are appended to, so that a field's own shape rules (absolute, relative, ...) still
# let the dangerous part through when the validator is only a prefix check.
BASE = {
    "install_dir": "{install_dir}",
    "compose_project": "p",
    "image_tag": "v1",
    "profiles": "extra",
    "domain": "tenant.example.org",
    "upgrade_script": "scripts/upgrade.sh",
}


def _canaries(tenant) -> list[Path]:
    home = Path(pwd.getpwnam("ccpnode").pw_dir)
    places = [Path("/tmp"), home, tenant.path, Path.cwd(), Path(tenant.path).parent]
    return [place / CANARY_NAME for place in places if (place / CANARY_NAME).exists()]


def _value(field: str, payload: str, instance: Instance):
    if field in ("protected_paths",):
        return [f"mkdocs/{payload}"]
    if field == "health_urls":
        return [f"http://127.0.0.1:{instance.ports['web']}/{payload}"]
    if field == "secrets":
        return {"APP_SECRET": payload}
    return BASE[field].format(install_dir=instance.install_dir) + payload


def _ops(instance: Instance, *, upgrade: bool, backup: bool) -> list[str]:
    """Run what uses the instance's fields; returns each operation's outcome (errors are expected)."""
    outcomes = []
    for name, op in (
        ("health", lambda: instance_check_health(instance=instance)),
        ("preview", lambda: instance_preview_report(instance=instance, release="v1")),
    ):
        try:
            op()
            outcomes.append(f"{name}: ok")
        except CCPError as exc:
            outcomes.append(f"{name}: {exc.message[:80]}")
    if upgrade:
        try:
            done = upgrade_request(instance=instance, mode="image_only", image_tag="v1", enqueue=False)
            outcomes.append(f"upgrade: {upgrade_run(upgrade_id=done.pk)}")
        except CCPError as exc:
            outcomes.append(f"upgrade: {exc.message[:80]}")
    if backup:
        taken = backup_request(instance=instance, enqueue=False)
        backup_run(backup_id=taken.pk)
        taken.refresh_from_db()
        outcomes.append(f"backup: {taken.status}")
        if taken.status == BackupStatus.SUCCEEDED:
            restore = backup_restore_request(backup=taken, enqueue=False)
            outcomes.append(f"restore: {backup_restore_run(restore_id=restore.pk)}")
    return outcomes


# Fields whose rules (a path shape, free text) let shell metacharacters through as data.
ALWAYS_ACCEPTED_SOME = {"install_dir", "protected_paths", "upgrade_script", "secrets"}
INSTANCE_FIELDS = [
    "install_dir",
    "compose_project",
    "profiles",
    "protected_paths",
    "health_urls",
    "domain",
    "upgrade_script",
    "secrets",
]


@pytest.mark.parametrize("field", INSTANCE_FIELDS)
def test_instance_fields(field, make_tenant, api, superuser, settings, tmp_path):
    settings.BACKUP_ROOT = tmp_path / "backups"
    settings.CCP_HEALTH_TIMEOUT = 2
    tenant = make_tenant()
    original = Instance.objects.get(pk=tenant.instance.pk)
    client = api(superuser)
    accepted, refused = [], []
    try:
        for payload in PAYLOADS:
            value = _value(field, payload, original)
            response = client.patch(f"/api/v1/instances/{original.slug}/", {field: value}, format="json")
            assert response.status_code in (200, 400), (field, payload, response.content)
            if response.status_code == 400:
                refused.append(payload)
                continue
            accepted.append(payload)
            changed = Instance.objects.get(pk=original.pk)
            # the upgrade and restore each cost a compose run: run them for the fields they read
            heavy = field in ("install_dir", "compose_project", "profiles", "protected_paths")
            _ops(changed, upgrade=heavy, backup=heavy or field == "secrets")
            assert not _canaries(tenant), f"{field}={value!r} created {_canaries(tenant)}"
            Instance.objects.filter(pk=original.pk).update(
                **{f: getattr(original, f) for f in BASE if f != "image_tag"},
                protected_paths=original.protected_paths,
                health_urls=original.health_urls,
                secrets_encrypted=original.secrets_encrypted,
            )
    finally:
        close_all()
    assert len(accepted) + len(refused) == len(PAYLOADS) >= 12
    if field in ALWAYS_ACCEPTED_SOME:  # the operations really ran with hostile values
        assert accepted, f"no payload was accepted for {field}; the matrix would prove nothing"
    assert not _canaries(tenant)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_quick_upgrade_image_tag(payload, make_tenant, api, superuser):
    tenant = make_tenant()
    response = api(superuser).post(
        f"/api/v1/instances/{tenant.instance.slug}/upgrades/",
        {"mode": "image_only", "image_tag": f"v1{payload}"},
        format="json",
    )
    assert response.status_code == 400  # a tag is letters, digits, '_', '.', '-': nothing here reaches a node
    assert not _canaries(tenant)


@pytest.mark.parametrize("field", ["instance_root", "ssh_user", "address"])
def test_node_fields(field, testbed_node, make_tenant, api, superuser):
    tenant = make_tenant()
    original = Node.objects.get(pk=testbed_node.pk)
    client = api(superuser)
    try:
        for payload in PAYLOADS:
            base = {"instance_root": "/srv/ccp-testbed", "ssh_user": "ccpnode", "address": original.address}[field]
            response = client.patch(f"/api/v1/nodes/{original.name}/", {field: base + payload}, format="json")
            assert response.status_code in (200, 400), (field, payload, response.content)
            if response.status_code == 200:
                try:
                    node_check(node=Node.objects.get(pk=original.pk))
                except CCPError:
                    pass
                Node.objects.filter(pk=original.pk).update(**{field: getattr(original, field)})
            assert not _canaries(tenant), f"{field}: {payload!r}"
    finally:
        close_all()


@pytest.mark.parametrize("field", ["version", "image_tag", "template_set", "registry"])
def test_release_fields(field, make_tenant, api, superuser):
    tenant = make_tenant()
    client = api(superuser)
    for number, payload in enumerate(PAYLOADS):
        body = {"version": f"v9.{number}", "image_tag": "v1", "template_set": "testbed", "registry": "127.0.0.1:5500"}
        body[field] = body[field] + payload
        response = client.post("/api/v1/releases/", body, format="json")
        assert response.status_code in (201, 400), (field, payload, response.content)
        if response.status_code == 201:
            try:
                instance_preview_report(instance=tenant.instance, release=Release.objects.get(version=body["version"]))
            except CCPError:
                pass
        assert not _canaries(tenant), f"{field}: {payload!r}"
    close_all()
    assert not os.path.exists(CANARY)
