"""Tenants on a real SSH node (sshd on 127.0.0.x, as the node account), a backup root per test, and a
real Celery worker."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import pyrage
import pytest

from instances.drivers import close_all
from instances.models import Node
from tests.testbed.s3 import CREDENTIALS, moto_server
from tests.testbed.tenant import Tenant, tenant_create
from tests.testbed.tenant_fixtures import celery_worker_thread  # noqa: F401 - a pytest fixture

from .helpers import (
    COMPOSE,
    CONFIG_FILES,
    MKDOCS_FILES,
    NOT_BACKED_UP,
    free_port,
    give_to_node_account,
    make_ssh_node,
    write_tree,
)


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


@pytest.fixture(scope="session")
def s3_server():
    """One moto_server (a real S3 endpoint on 127.0.0.1) for the whole run."""
    with moto_server() as server:
        yield server


@pytest.fixture
def s3_storage(settings, monkeypatch, s3_server):
    """CCP_BACKUP_STORAGE pointing at a fresh bucket of the moto server; no local backup folder."""
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    bucket = s3_server.new_bucket()
    settings.CCP_BACKUP_STORAGE = f"s3://{bucket}/ccp-backups"
    settings.CCP_S3_ENDPOINT_URL = s3_server.endpoint
    settings.CCP_S3_REGION = CREDENTIALS["AWS_DEFAULT_REGION"]
    settings.BACKUP_ROOT = Path("/nonexistent/ccp-backups-must-not-be-used")
    s3_server.bucket = bucket
    return s3_server


@pytest.fixture
def age_keys(settings, tmp_path):
    """An age key pair: the public key as the recipient, the identity in a 0600 file the workers read."""
    identity = pyrage.x25519.Identity.generate()
    path = tmp_path / "backup-identity.txt"
    path.write_text(f"# created: by the tests\n# public key: {identity.to_public()}\n{identity}\n")
    path.chmod(0o600)
    settings.CCP_BACKUP_AGE_RECIPIENTS = [str(identity.to_public())]
    settings.CCP_BACKUP_AGE_IDENTITY_FILE = str(path)
    return path


@pytest.fixture
def s3_stack_tenant(make_tenant, docker_engine):
    """A tenant whose compose file runs a container (a restore ends with `up --wait`)."""
    port = free_port()
    compose = COMPOSE.format(image=docker_engine.image("v1"), port=port).encode()
    tenant = make_tenant(extra={"docker-compose.yml": compose}, compose_project=f"ccp-s3-{port}")
    yield tenant
    subprocess.run(
        ["docker", "compose", "--project-name", tenant.instance.compose_project, "down", "--timeout", "1"],
        cwd=tenant.path,
        capture_output=True,
        timeout=120,
    )
