"""Helpers of the driver tests, also used by other test packages (no test module imports another)."""

from instances.drivers import SSHDriver
from tests.testbed.sshd import SSHNode


def ssh_driver(node: SSHNode, **options) -> SSHDriver:
    return SSHDriver(node.host, node.port, node.user, pkey_text=node.client_key, **options)
