"""Fixtures for running tenants on a real node: the testbed template set rendered into a directory
reached over SSH, its stack running on the docker engine, images from the loopback registry; and a
real Celery worker. The upgrade and security tests import them into their conftest.py."""

import os
import uuid

import pytest
from celery.contrib.testing.worker import start_worker

from ccp.celery import app
from instances.drivers import close_all
from instances.models import Instance, Node
from upgrades import hooks
from upgrades.models import Release

from .tenant import Tenant, provision, tenant_create, testbed_ports


@pytest.fixture
def testbed_release(db, docker_engine) -> Release:
    def make(version: str, tag: str, default: bool = False) -> Release:
        release, _ = Release.objects.get_or_create(
            version=version,
            defaults={
                "image_tag": tag,
                "template_set": "testbed",
                "is_default": default,
                "registry": f"{docker_engine.registry}",
            },
        )
        return release

    make("v1", "v1", default=True)
    return make


@pytest.fixture
def testbed_node(db, ssh_node) -> Node:
    node = Node(name=f"tb-{uuid.uuid4().hex[:6]}", instance_root="/srv/ccp-testbed", **ssh_node.node_fields())
    node.full_clean()
    node.save()
    yield node
    close_all()


@pytest.fixture
def second_testbed_node(db, second_ssh_node) -> Node:
    """A second node (its own sshd on the next loopback address), for work spread over nodes."""
    node = Node(name=f"tb2-{uuid.uuid4().hex[:6]}", instance_root="/srv/ccp-testbed", **second_ssh_node.node_fields())
    node.full_clean()
    node.save()
    yield node
    close_all()


@pytest.fixture
def make_tenant(testbed_node, testbed_release, node_workdir_factory, settings):
    """make_tenant(registered=False, tag="v1", node=None) -> a running tenant at release v1 (or the given
    tag), on the testbed node (or the given one)."""
    settings.CCP_HEALTH_TIMEOUT = 20
    made: list[Tenant] = []

    def make(*, registered: bool = False, tag: str = "v1", profiles: str = "", node: Node | None = None) -> Tenant:
        slug = f"t{uuid.uuid4().hex[:8]}"
        tenant = tenant_create(
            node=node or testbed_node,
            path=node_workdir_factory(),
            slug=slug,
            compose_project=f"ccp-{slug}",
            ports=testbed_ports(),
            profiles=profiles,
            # installed by its own script: a registered tenant keeps its own .env and secrets
            secrets={"APP_SECRET": "registered-secret-" + uuid.uuid4().hex} if registered else None,
        )
        provision(tenant, tag=tag)
        if registered:
            Instance.objects.filter(pk=tenant.instance.pk).update(is_registered=True)
            tenant.instance.refresh_from_db()
        made.append(tenant)
        return tenant

    yield make
    for tenant in made:
        tenant.remove_containers()


@pytest.fixture
def celery_worker_thread(transactional_db):
    """A real Celery worker (in a thread of this process) consuming from the configured broker."""
    with start_worker(app, pool="solo", concurrency=1, perform_ping_check=False, shutdown_timeout=60) as worker:
        yield worker


@pytest.fixture
def worker_process_env(settings) -> dict:
    """Environment for a Celery worker in its own process that shares this test's database and keys."""
    db = settings.DATABASES["default"]
    if db["ENGINE"] == "django.db.backends.sqlite3":
        url = f"sqlite:///{db['NAME']}"
    else:
        url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    return {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "ccp.test_settings",
        "SECRET_KEY": settings.SECRET_KEY,
        "CCP_ENCRYPTION_KEYS": ",".join(settings.CCP_ENCRYPTION_KEYS),
        "CCP_LOCK_STALE_SECONDS": "30",
        "CCP_HEALTH_TIMEOUT": "20",
    }


@pytest.fixture
def after_up():
    """after_up(fn): run fn(ctx) right after an upgrade's `up -d --wait` (upgrades.hooks); cleared afterwards."""
    yield lambda fn: hooks.register("after_up", fn)
    hooks.clear()
