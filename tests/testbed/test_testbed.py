"""The testbed itself: the node account drives docker compose over SSH with the registry's images."""

from __future__ import annotations

import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from instances.drivers import CommandFailed, SSHDriver

from .fixtures import DockerEngine
from .sshd import SSHNode, free_port

pytestmark = pytest.mark.testbed

COMPOSE = """\
services:
  app:
    image: ${IMAGE}
    network_mode: host
    environment:
      PORT: "${PORT}"
"""


@pytest.fixture
def node(ssh_node: SSHNode) -> Iterator[SSHDriver]:
    with SSHDriver(ssh_node.host, ssh_node.port, ssh_node.user, pkey_text=ssh_node.client_key) as driver:
        yield driver


@pytest.fixture
def project(node: SSHDriver, node_workdir: Path) -> Iterator[tuple[str, int]]:
    node.write_file(str(node_workdir / "compose.yml"), COMPOSE.encode())
    name = f"ccp-testbed-{uuid.uuid4().hex[:8]}"
    yield name, free_port("127.0.0.1")
    node.run(["docker", "compose", "-p", name, "down", "--timeout", "5"], cwd=str(node_workdir), timeout=120)


def up(node: SSHDriver, workdir: Path, project: tuple[str, int], image: str) -> None:
    name, port = project
    argv = ["env", f"IMAGE={image}", f"PORT={port}", "docker", "compose", "-p", name, "up", "-d", "--wait"]
    node.run(argv, cwd=str(workdir), timeout=120, check=True)


def version(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/version", timeout=5) as response:
        return response.read().decode()


def test_versions_upgrade_over_ssh_and_stop_promptly(
    node: SSHDriver, node_workdir: Path, project, docker_engine: DockerEngine
) -> None:
    up(node, node_workdir, project, docker_engine.image("v1"))
    assert version(project[1]) == "v1"

    up(node, node_workdir, project, docker_engine.image("v2"))
    assert version(project[1]) == "v2"

    started = time.monotonic()
    node.run(["docker", "compose", "-p", project[0], "stop"], cwd=str(node_workdir), timeout=60, check=True)
    assert time.monotonic() - started < 5  # PID 1 handles SIGTERM: no 10 s stop timeout


def test_the_broken_tag_never_becomes_healthy(
    node: SSHDriver, node_workdir: Path, project, docker_engine: DockerEngine
) -> None:
    with pytest.raises(CommandFailed, match="unhealthy"):
        up(node, node_workdir, project, docker_engine.image(docker_engine.broken_tag))
    assert version(project[1]) == "broken"  # it runs and answers; only its health check fails


def test_two_nodes_are_two_hosts(ssh_node: SSHNode, second_ssh_node: SSHNode) -> None:
    assert ssh_node.host != second_ssh_node.host and ssh_node.host.startswith("127.0.0.")
    assert ssh_node.host_key != second_ssh_node.host_key
    for remote in (ssh_node, second_ssh_node):
        with SSHDriver(remote.host, remote.port, remote.user, key_path=remote.key_path) as driver:
            assert driver.run(["id", "-un"], check=True).stdout == b"ccpnode\n"


def test_a_node_with_its_own_engine_runs_docker_there_and_not_on_the_panel_hosts(
    engine_ssh_node: SSHNode, node_engine: str
) -> None:
    with SSHDriver(
        engine_ssh_node.host, engine_ssh_node.port, engine_ssh_node.user, pkey_text=engine_ssh_node.client_key
    ) as driver:
        seen = driver.run(["docker", "info", "--format", "{{.DockerRootDir}}"], check=True).stdout.decode()
    panel = subprocess.run(
        ["docker", "info", "--format", "{{.DockerRootDir}}"], capture_output=True, text=True, check=True
    ).stdout
    assert seen.split()[0] == "/var/lib/ccp-testbed/node-engine" != panel.split()[0]
    networks = subprocess.run(
        ["docker", "--host", node_engine, "network", "ls", "--format", "{{.Name}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert sorted(networks) == ["host", "none"]  # no bridge: no container gets a private address
