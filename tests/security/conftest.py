"""Real tenants on a real node for the security tests: the fixtures the upgrade tests use too."""

from tests.testbed.tenant_fixtures import (  # noqa: F401 - pytest fixtures
    celery_worker_thread,
    make_tenant,
    testbed_node,
    testbed_release,
    worker_process_env,
)
