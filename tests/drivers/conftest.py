"""Driver tests run against both drivers where the behaviour is shared: the local one (commands as
the test process) and the SSH one (a real sshd on 127.0.0.x, as the node account)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest

from instances.drivers import Driver, LocalDriver
from tests.testbed.sshd import SSHNode

from .helpers import ssh_driver


@pytest.fixture(params=["local", "ssh"])
def driver(request: pytest.FixtureRequest) -> Iterator[Driver]:
    if request.param == "local":
        yield LocalDriver()
        return
    node: SSHNode = request.getfixturevalue("ssh_node")
    with ssh_driver(node) as connected:
        yield connected


def processes_matching(pattern: str) -> list[str]:
    """Command lines of processes on the node (this machine) matching `pattern`, except pgrep's own."""
    found = subprocess.run(["pgrep", "-af", pattern], capture_output=True, text=True, check=False)
    return [line for line in found.stdout.splitlines() if "pgrep" not in line]


def wait_until_gone(pattern: str, within: float = 10.0) -> list[str]:
    deadline = time.monotonic() + within
    while (left := processes_matching(pattern)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left
