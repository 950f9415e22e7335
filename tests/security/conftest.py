"""Real tenants on a real node for the security tests: the upgrade tests' fixtures, shared."""

from tests.upgrades.conftest import make_tenant, testbed_node, testbed_release  # noqa: F401 - pytest fixtures
