"""Fixtures for the Django side of the templates: releases and tenants on a local node (helpers.py
has the command runner and `install`)."""

import itertools
from collections.abc import Callable

import pytest

from tests.testbed.tenant import Tenant, tenant_create
from upgrades.models import Release

from .helpers import APP_SECRET

# Every tenant of these tests gets its own block of loopback ports, so tenants on one node never clash.
_port_blocks = itertools.count(31000, 10)


@pytest.fixture
def testbed_release(db) -> Release:
    return Release.objects.create(
        version="v1.0.0", image_tag="v1", template_set="testbed", registry="127.0.0.1:5000", is_default=True
    )


@pytest.fixture
def campaign_release(db) -> Release:
    return Release.objects.create(
        version="v2.10.3", image_tag="v2.10.3", template_set="campaign", registry="registry.example.org/campaign"
    )


def port_block() -> dict[str, int]:
    base = next(_port_blocks)
    return {"web": base, "api": base + 1, "docs": base + 2, "extra": base + 3}


@pytest.fixture
def local_node(make_node):
    return make_node(driver="local")


@pytest.fixture
def make_tenant(local_node, tmp_path) -> Callable[..., Tenant]:
    """make_tenant(node=None, install_dir=None, secret=APP_SECRET, **fields) -> a testbed tenant (not
    installed: see helpers.install) on the local node, its install directory a fresh tmp_path subdirectory."""

    def make(*, node=None, install_dir: str = "", secret: str = APP_SECRET, **fields) -> Tenant:
        n = next(_port_blocks)
        if not install_dir:
            install_dir = tmp_path / f"tenant-{n}"
            install_dir.mkdir()
        registered = fields.get("is_registered", False)
        return tenant_create(
            node=node or local_node,
            path=install_dir,
            slug=f"tenant-{n}",
            **{"name": f"Tenant {n}", "ports": port_block(), **fields},
            secrets=None if registered else {"APP_SECRET": secret},
        )

    return make
