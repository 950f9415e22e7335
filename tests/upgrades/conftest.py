"""The upgrade tests' fixtures: running tenants on a real node and a real worker, and the after_up hook
(tests/testbed/tenant_fixtures.py, shared with the security and browser tests)."""

from tests.testbed.tenant_fixtures import (  # noqa: F401 - pytest fixtures
    after_up,
    celery_worker_thread,
    make_tenant,
    second_testbed_node,
    testbed_node,
    testbed_release,
    worker_process_env,
)
