"""Helpers of the driver tests, also used by other test packages (no test module imports another)."""

import subprocess
import time

from instances.drivers import SSHDriver
from tests.testbed.sshd import SSHNode


def ssh_driver(node: SSHNode, **options) -> SSHDriver:
    return SSHDriver(node.host, node.port, node.user, pkey_text=node.client_key, **options)


def processes_matching(pattern: str) -> list[str]:
    """Command lines of processes on the node (this machine) matching `pattern`, except pgrep's own."""
    found = subprocess.run(["pgrep", "-af", pattern], capture_output=True, text=True, check=False)
    return [line for line in found.stdout.splitlines() if "pgrep" not in line]


def wait_until_gone(pattern: str, within: float = 10.0) -> list[str]:
    deadline = time.monotonic() + within
    while (left := processes_matching(pattern)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left
