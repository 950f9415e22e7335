"""Tenants on a real SSH node (sshd on 127.0.0.x, as the node account), a backup root per test, and a
real Celery worker."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from instances.drivers import close_all
from instances.models import Node
from tests.testbed.tenant import Tenant, tenant_create
from tests.testbed.tenant_fixtures import celery_worker_thread  # noqa: F401 - a pytest fixture

from .helpers import CONFIG_FILES, MKDOCS_FILES, NOT_BACKED_UP, give_to_node_account, make_ssh_node, write_tree


@pytest.fixture
def backup_root(settings, tmp_path) -> Path:
    root = tmp_path / "backups"
    root.mkdir()
    settings.BACKUP_ROOT = root
    return root


@pytest.fixture
def ssh_test_node(db, ssh_node) -> Node:
    yield make_ssh_node(ssh_node)
    close_all()


@pytest.fixture
def make_tenant(ssh_test_node, node_workdir_factory) -> Callable[..., Tenant]:
    """make_tenant(git=False, node=None, extra=None) -> an instance whose install directory on the node
    holds mkdocs/, configs/, nginx/, .env, a compose file and some files no archive takes."""

    def make(*, git: bool = False, node: Node | None = None, extra: dict[str, bytes] | None = None, **fields) -> Tenant:
        path = node_workdir_factory()
        write_tree(path, {**MKDOCS_FILES, **CONFIG_FILES, **NOT_BACKED_UP, **(extra or {})})
        (path / "mkdocs/docs/current.md").symlink_to("index.md")
        if git:
            git_cmd = [
                "git",
                "-c",
                "safe.directory=*",
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@example.org",
                "-C",
                str(path),
            ]
            subprocess.run([*git_cmd, "init", "-q", "-b", "main"], check=True)
            subprocess.run([*git_cmd, "add", "mkdocs"], check=True)
            subprocess.run([*git_cmd, "commit", "-q", "-m", "initial"], check=True)
        give_to_node_account(path)
        return tenant_create(
            node=node or ssh_test_node, path=path, slug=f"t-{uuid.uuid4().hex[:8]}", **{"ports": {}, **fields}
        )

    return make
