"""SSH specifics: host key pinning, readable connection errors, one reused connection."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

import pytest

from instances.drivers import (
    AuthenticationFailed,
    ConnectionPool,
    DriverError,
    HostKeyMismatch,
    NodeUnreachable,
    SSHDriver,
    fingerprint,
)
from tests.testbed.sshd import SSHNode, free_port, generate_key

from .helpers import ssh_driver

pytestmark = pytest.mark.testbed


def test_first_contact_pins_the_host_key(ssh_node: SSHNode) -> None:
    offered: list[tuple[str, str, str]] = []

    with ssh_driver(ssh_node, on_new_host_key=lambda *key: offered.append(key)) as driver:
        driver.run(["true"], check=True)
        driver.close()
        driver.run(["true"], check=True)  # a reconnect checks the pinned key; it does not pin again

    assert offered == [(*ssh_node.host_key, ssh_node.host_key_fingerprint)]
    assert driver.pinned_host_key == ssh_node.host_key
    assert fingerprint(ssh_node.host_key[1]) == ssh_node.host_key_fingerprint


def test_a_changed_host_key_is_refused_before_anything_runs(ssh_node_factory, node_workdir: Path) -> None:
    node: SSHNode = ssh_node_factory()
    old_key, old_fingerprint = node.host_key, node.host_key_fingerprint
    pooled = ssh_driver(node)
    pooled.run(["true"], check=True)
    assert pooled.pinned_host_key == old_key
    node.restart_with_new_host_key()
    proof = node_workdir / "ran"

    for driver in (pooled, ssh_driver(node, pinned_host_key=old_key)):
        with pytest.raises(HostKeyMismatch) as caught:
            driver.run(["touch", str(proof)])
        assert not proof.exists()

    message = caught.value.message
    assert old_fingerprint in message and node.host_key_fingerprint in message
    assert f"node {node.host}:{node.port}" in message
    assert "re-pin" in message
    assert caught.value.offered_key == node.host_key
    assert "Accepted publickey" not in node.log_path.read_text().split("Server listening")[-1]

    with ssh_driver(node, pinned_host_key=node.host_key) as repinned:
        repinned.run(["touch", str(proof)], check=True)
    assert proof.exists()


def test_the_pinned_key_type_is_asked_for(ssh_node: SSHNode) -> None:
    # The node also has other host key types in many fleets; it must present the pinned one.
    with ssh_driver(ssh_node, pinned_host_key=ssh_node.host_key) as driver:
        assert driver.connect().get_remote_server_key().get_name() == ssh_node.host_key[0]


def test_a_wrong_client_key_is_a_readable_authentication_error(ssh_node: SSHNode, tmp_path: Path) -> None:
    stranger = generate_key(tmp_path / "stranger", "not authorized")
    driver = SSHDriver(ssh_node.host, ssh_node.port, ssh_node.user, pkey_text=stranger)

    with pytest.raises(AuthenticationFailed) as caught:
        driver.run(["true"])

    message = caught.value.message
    assert f"Node {ssh_node.host}:{ssh_node.port} refused the panel's key" in message
    assert driver.key_fingerprint in message and f"user {ssh_node.user}" in message
    assert caught.value.http_status == 502


def test_a_wrong_user_is_an_authentication_error(ssh_node: SSHNode) -> None:
    driver = SSHDriver(ssh_node.host, ssh_node.port, "nobody-here", pkey_text=ssh_node.client_key)

    with pytest.raises(AuthenticationFailed, match="for user nobody-here"):
        driver.run(["true"])


def test_an_unreadable_key_is_an_authentication_error(ssh_node: SSHNode) -> None:
    with pytest.raises(AuthenticationFailed, match="stored private key .* cannot be used"):
        SSHDriver(ssh_node.host, ssh_node.port, ssh_node.user, pkey_text="-----BEGIN NONSENSE-----\n")


@pytest.fixture
def any_key(tmp_path: Path) -> str:
    return generate_key(tmp_path / "any", "throwaway")


def test_a_closed_port_is_unreachable(any_key: str) -> None:
    port = free_port("127.0.0.1")
    driver = SSHDriver("127.0.0.1", port, "ccpnode", pkey_text=any_key)

    with pytest.raises(NodeUnreachable) as caught:
        driver.run(["true"])

    assert caught.value.message == (
        f"Node 127.0.0.1:{port} cannot be reached: it refused the connection (is sshd listening on port {port}?)."
    )


def test_a_silent_server_times_out_as_unreachable(any_key: str) -> None:
    # Accepts TCP but never says a word, like a firewall's tarpit or a hung sshd.
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True).start()
    driver = SSHDriver("127.0.0.1", port, "ccpnode", pkey_text=any_key, connect_timeout=1)
    started = time.monotonic()

    with pytest.raises(NodeUnreachable, match=f"Node 127.0.0.1:{port} cannot be reached: no SSH session"):
        driver.run(["true"])

    assert time.monotonic() - started < 10
    listener.close()
    for sock in accepted:
        sock.close()


def test_one_connection_serves_many_commands_and_files(ssh_node: SSHNode, node_workdir: Path) -> None:
    with ssh_driver(ssh_node) as driver:
        transport = driver.connect()
        for n in range(20):
            driver.run(["true"], check=True)
            driver.write_file(str(node_workdir / f"f{n}"), b"x")
        assert driver.checksums([str(node_workdir)]) and driver.exists(str(node_workdir / "f0"))

        assert driver.connect() is transport
        assert transport.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def test_the_pool_shares_a_driver_and_closes_idle_connections(ssh_node: SSHNode) -> None:
    pool = ConnectionPool(idle_seconds=0.5)
    key = (ssh_node.host, ssh_node.port, ssh_node.user, "fp")
    driver = pool.get(key, lambda: ssh_driver(ssh_node))
    driver.run(["true"], check=True)

    assert pool.get(key, lambda: pytest.fail("created a second driver")) is driver
    deadline = time.monotonic() + 10
    while driver.connected and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not driver.connected  # the reaper closed it
    assert driver.run(["true"]).ok  # and the next use reconnects
    pool.close_all()
    pool.stop()
    assert not driver.connected


def test_a_busy_connection_is_not_reaped(ssh_node: SSHNode) -> None:
    pool = ConnectionPool(idle_seconds=0.2)
    driver = pool.get((ssh_node.host, ssh_node.port, ssh_node.user, "busy"), lambda: ssh_driver(ssh_node))

    assert driver.run(["sleep", "2.5"], check=True).ok  # the reaper ran meanwhile and left it alone
    pool.close_all()
    pool.stop()


def test_a_command_line_is_never_assembled_from_values(ssh_node: SSHNode, node_workdir: Path) -> None:
    # A path with shell syntax in it reaches sftp and the shell as one literal name.
    weird = node_workdir / f"$(touch pwned-{uuid.uuid4().hex[:6]}); 'quoted' name"
    with ssh_driver(ssh_node) as driver:
        driver.write_file(str(weird), b"ok")
        assert driver.run(["cat", str(weird)], cwd=str(node_workdir), check=True).stdout == b"ok"
    assert sorted(p.name for p in node_workdir.iterdir()) == [weird.name]


def test_too_many_sessions_is_an_error_that_keeps_the_connection(ssh_node: SSHNode, monkeypatch) -> None:
    # OpenSSH allows 10 sessions per connection (MaxSessions); the pooled connection must survive
    # a caller who asks for an eleventh (after the short wait for a session to be freed).
    monkeypatch.setattr("instances.drivers.ssh.SESSION_RETRY_SECONDS", 0.2)
    with ssh_driver(ssh_node) as driver, ExitStack() as streams:
        open_streams = [
            streams.enter_context(driver.open_stream_out(["sh", "-c", "sleep 1; echo ok"])) for _ in range(10)
        ]
        transport = driver.connect()

        with pytest.raises(DriverError, match=f"Node {ssh_node.host}:{ssh_node.port} refused a new session"):
            driver.run(["true"])

        assert [stream.read() for stream in open_streams] == [b"ok\n"] * 10
        assert driver.connect() is transport
