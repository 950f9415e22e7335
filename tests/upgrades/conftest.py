"""The upgrade tests' fixtures: running tenants on a real node and a real worker (tests/testbed/
tenant_fixtures.py, shared with the security tests), and the after_up hook."""

import pytest

from tests.testbed.tenant_fixtures import (  # noqa: F401 - pytest fixtures
    celery_worker_thread,
    make_tenant,
    testbed_node,
    testbed_release,
    worker_process_env,
)
from upgrades import hooks


@pytest.fixture
def after_up():
    """after_up(fn): run fn(ctx) right after an upgrade's `up -d --wait` (upgrades.hooks); cleared afterwards."""
    yield lambda fn: hooks.register("after_up", fn)
    hooks.clear()
