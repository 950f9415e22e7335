"""Helpers of the backup tests: a tenant's files, and hashing them the way the node does."""

from __future__ import annotations

import hashlib
import os
import pwd
import socket
import time
import uuid
from pathlib import Path

from instances.backups import layout
from instances.backups.manifest import FileEntry, Manifest, format_manifest
from instances.choices import BackupStatus
from instances.models import Backup, Instance, Node
from tests.testbed.sshd import NODE_USER, SSHNode

# Tenant content an operator edits by hand: odd names on purpose.
MKDOCS_FILES = {
    "mkdocs/mkdocs.yml": b"site_name: Tenant docs\n",
    "mkdocs/docs/index.md": b"# Welcome\n\nHand-written by the tenant.\n",
    "mkdocs/docs/guide with spaces.md": b"A guide \xe2\x80\x94 edited by hand.\n",
    "mkdocs/docs/été.md": b"Unicode file name.\n",
    "mkdocs/docs/-starts-with-dash.md": b"dash\n",
}
CONFIG_FILES = {
    ".env": b"COMPOSE_PROJECT_NAME=tenant\nAPP_SECRET=s3cret\n",
    "docker-compose.yml": b"services: {}\n",
    "configs/app.conf": b"greeting=hello\n",
    "configs/prometheus/prometheus.yml": b"global: {}\n",
    "nginx/nginx.conf": b"events {}\n",
    "nginx/conf.d/default.conf": b"server {}\n",
}
NOT_BACKED_UP = {"notes.txt": b"not a config file\n", "data/db.sqlite": b"not in any archive\n"}


# A one-service stack serving mkdocs/ (a restore ends with `up --wait`).
COMPOSE = """services:
  docs:
    image: {image}
    network_mode: host
    init: true
    environment:
      PORT: "{port}"
    volumes:
      - ./mkdocs:/www/docs:ro
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The top-level entries a restore puts back, for comparing a tenant's files before and after.
TOPS = ["mkdocs", "configs", "nginx", ".env", "docker-compose.yml"]


def vandalise_lightly(path: Path) -> None:
    """Edit a page, add one, change .env: what a restore must undo."""
    (path / "mkdocs/docs/index.md").write_bytes(b"# Overwritten by mistake\n")
    (path / "mkdocs/docs/new-page.md").write_bytes(b"added after the backup\n")
    (path / ".env").write_bytes(b"COMPOSE_PROJECT_NAME=tenant\nAPP_SECRET=changed\n")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def give_to_node_account(path: Path) -> None:
    """Files the test wrote as root belong to the node account, as a tenant's files would."""
    account = pwd.getpwnam(NODE_USER)
    for root, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            os.lchown(os.path.join(root, name), account.pw_uid, account.pw_gid)
    os.chown(path, account.pw_uid, account.pw_gid)


def write_tree(base: Path, files: dict[str, bytes]) -> None:
    for relative, content in files.items():
        target = base / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)


def local_sums(base: Path, top: list[str]) -> dict[str, str]:
    """sha256 of every regular file under the given top-level names, keyed like Driver.checksums."""
    sums = {}
    for name in top:
        root = base / name
        paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())
        for path in paths:
            sums[path.relative_to(base).as_posix()] = sha256(path.read_bytes())
    return sums


def make_ssh_node(ssh: SSHNode) -> Node:
    node = Node(
        name=f"node-{uuid.uuid4().hex[:6]}",
        driver="ssh",
        address=ssh.host,
        ssh_port=ssh.port,
        ssh_user=ssh.user,
        instance_root="/srv/ccp-testbed",
    )
    node.set_private_key(ssh.client_key)
    node.full_clean()
    node.save()
    return node


def fake_backup(instance: Instance, backup_root: Path, *, label: str = "manual", files: dict[str, bytes] | None = None):
    """A complete backup folder and row made locally (no node): for API, admin and retention tests."""
    from django.utils import timezone

    files = files or {"mkdocs.tar.gz": b"not really gzip", "host-state.txt": b"# host state\n"}
    backup = Backup.objects.create(instance=instance, label=label, status=BackupStatus.RUNNING)
    location = (
        f"{layout.instance_backups_folder(node_name=instance.node.name, slug=instance.slug)}/{backup.pk:06d}-{label}"
    )
    folder = backup_root / location
    folder.mkdir(parents=True)
    entries = []
    for name, data in files.items():
        (folder / name).write_bytes(data)
        paths = ("mkdocs",) if name == "mkdocs.tar.gz" else ()
        entries.append(FileEntry(name, sha256(data), len(data), paths))
    manifest = Manifest(meta={"instance": instance.slug, "node": instance.node.name, "label": label}, files=entries)
    (folder / "MANIFEST.txt").write_text(format_manifest(manifest))
    Backup.objects.filter(pk=backup.pk).update(
        status=BackupStatus.SUCCEEDED,
        location=location,
        manifest=manifest.as_json(),
        size_bytes=sum(len(d) for d in files.values()),
        started_at=timezone.now(),
        finished_at=timezone.now(),
    )
    backup.refresh_from_db()
    return backup


def wait_for(condition, within: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")
