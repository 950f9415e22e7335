"""Driver tests run against both drivers where the behaviour is shared: the local one (commands as
the test process) and the SSH one (a real sshd on 127.0.0.x, as the node account)."""

from __future__ import annotations

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
