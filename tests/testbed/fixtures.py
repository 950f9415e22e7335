"""pytest plugin: real nodes (sshd on 127.0.0.x) and a real docker engine with a local registry.

Register with `pytest_plugins = ["tests.testbed.fixtures"]`. When something the testbed needs is
missing, tests that need it are skipped with the reason, except under `CI=true`, where they fail:
CI must run everything (`tests/testbed/install.sh` prepares a machine).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ccp.celery import app

from . import images, services
from .sshd import (
    SSHNode,
    TestbedUnavailable,
    make_workdir,
    reap_orphans,
    remove_workdir,
    sshd_problem,
    start_node,
)

COMPOSE_PLUGIN = Path("/usr/local/lib/docker/cli-plugins/docker-compose")
# The second engine install.sh starts: a node whose sshd points DOCKER_HOST here has an engine of its own.
NODE_ENGINE_HOST = "unix:///run/ccp-testbed-engine/docker.sock"
INSTALL_SH = Path(__file__).with_name("install.sh")
INSTALL_HINT = "run tests/testbed/install.sh as root"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def unavailable(reason: str) -> None:
    """Skip locally, fail in CI: a missing testbed must never turn CI green."""
    if in_ci():
        pytest.fail(f"testbed unavailable in CI: {reason}", pytrace=False)
    pytest.skip(f"testbed unavailable: {reason}")


@dataclass(frozen=True)
class DockerEngine:
    registry: str
    repository: str
    healthy_tags: tuple[str, ...]
    broken_tag: str

    def image(self, tag: str) -> str:
        return f"{self.repository}:{tag}"


def _docker_problem() -> str | None:
    if shutil.which("docker") is None:
        return f"the docker CLI is not installed ({INSTALL_HINT})"
    if not images.docker_answers():
        return f"dockerd does not answer ({INSTALL_HINT})"
    if not COMPOSE_PLUGIN.exists():
        return f"docker compose v2 is not installed as {COMPOSE_PLUGIN} ({INSTALL_HINT})"
    if not images.registry_answers():
        return f"the test registry does not answer on {images.REGISTRY} ({INSTALL_HINT})"
    return None


def _start_installed_testbed() -> None:
    """As root on a machine where the packages are installed (e.g. after a reboot), start what is
    not running. Never installs packages from here: install.sh only reaches apt when one is missing."""
    installed = (
        all(shutil.which(tool) for tool in ("dockerd", "docker-registry", "sshd")) and Path(images.BUSYBOX).exists()
    )
    if os.geteuid() == 0 and installed:
        subprocess.run(["sh", str(INSTALL_SH)], capture_output=True, timeout=300, check=False)


def _private_networks() -> list[str]:
    """Docker networks other than the built-in host/none (a bridge would hand out private addresses)."""
    listing = subprocess.run(
        ["docker", "network", "ls", "--format", "{{.Name}}"], capture_output=True, text=True, timeout=60, check=False
    )
    return [name for name in listing.stdout.split() if name not in ("host", "none")]


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[DockerEngine]:
    """dockerd (no bridge), compose v2, the loopback registry, and the test images pushed to it.

    At the end of the session, any docker network a test created is removed and reported: test
    services use `network_mode: host`, so no container ever gets a private-range address.
    """
    if _docker_problem():
        _start_installed_testbed()
    problem = _docker_problem()
    if problem:
        unavailable(problem)
    try:
        images.ensure_images()
    except Exception as error:  # noqa: BLE001 - any failure here means the testbed is not usable
        unavailable(f"could not build or push the test images: {error}")
    yield DockerEngine(
        registry=images.REGISTRY,
        repository=images.REPOSITORY,
        healthy_tags=images.HEALTHY_TAGS,
        broken_tag=images.BROKEN_TAG,
    )
    stray = _private_networks()
    if stray:
        subprocess.run(["docker", "network", "rm", *stray], capture_output=True, timeout=60, check=False)
        pytest.fail(f"tests created docker networks {stray} (removed); test services must use network_mode: host")


def _node_engine_answers() -> bool:
    probe = subprocess.run(
        ["docker", "--host", NODE_ENGINE_HOST, "version", "--format", "{{.Server.Version}}"],
        capture_output=True,
        timeout=30,
        check=False,
    )
    return probe.returncode == 0


@pytest.fixture(scope="session")
def node_engine(docker_engine: DockerEngine) -> str:
    """DOCKER_HOST of the second docker engine (its own data root, exec root and socket; no bridge)."""
    if not _node_engine_answers():
        _start_installed_testbed()
    if not _node_engine_answers():
        unavailable(f"the node engine does not answer on {NODE_ENGINE_HOST} ({INSTALL_HINT})")
    networks = subprocess.run(
        ["docker", "--host", NODE_ENGINE_HOST, "network", "ls", "--format", "{{.Name}}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    ).stdout.split()
    if set(networks) - {"host", "none"}:
        unavailable(f"the node engine has networks {networks}; it must run with --bridge=none")
    return NODE_ENGINE_HOST


@pytest.fixture(scope="session")
def engine_ssh_node(_session_nodes: list[SSHNode], node_engine: str) -> SSHNode:
    """A shared node whose sessions use the node engine, not the panel host's: images must be shipped to it."""
    try:
        node = start_node(docker_host=node_engine)
    except TestbedUnavailable as error:
        unavailable(str(error))
    _session_nodes.append(node)
    return node


@pytest.fixture(scope="session")
def registry(docker_engine: DockerEngine) -> str:
    """`127.0.0.1:<port>` of the local registry holding `ccp-test/app:{v1,v2,v3,broken}`."""
    return docker_engine.registry


@pytest.fixture(scope="session")
def sshd_ready() -> None:
    problem = sshd_problem()
    if problem:
        unavailable(problem)
    reap_orphans()


def _start(started: list[SSHNode]) -> SSHNode:
    try:
        node = start_node()
    except TestbedUnavailable as error:
        unavailable(str(error))
    started.append(node)
    return node


def _stop_all(started: list[SSHNode]) -> None:
    for node in started:
        node.stop()
        shutil.rmtree(node.state_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def _session_nodes(sshd_ready: None) -> Iterator[list[SSHNode]]:
    started: list[SSHNode] = []
    yield started
    _stop_all(started)


@pytest.fixture
def ssh_node_factory(sshd_ready: None) -> Iterator[Callable[[], SSHNode]]:
    """Start nodes of your own (e.g. to change their host key); they stop when the test ends."""
    started: list[SSHNode] = []
    yield lambda: _start(started)
    _stop_all(started)


@pytest.fixture(scope="session")
def ssh_node(_session_nodes: list[SSHNode]) -> SSHNode:
    """A node shared by the whole session: do not restart it or change its keys (use the factory)."""
    return _start(_session_nodes)


@pytest.fixture(scope="session")
def second_ssh_node(_session_nodes: list[SSHNode], ssh_node: SSHNode) -> SSHNode:
    """Another shared node, on the next loopback address."""
    return _start(_session_nodes)


@pytest.fixture
def node_workdir_factory(sshd_ready: None) -> Iterator[Callable[[], Path]]:
    """Fresh directories on the node (this machine), owned by the node account; removed afterwards."""
    made: list[Path] = []

    def make() -> Path:
        path = make_workdir()
        made.append(path)
        return path

    yield make
    for path in made:
        remove_workdir(path)


@pytest.fixture
def node_workdir(node_workdir_factory: Callable[[], Path]) -> Path:
    """A fresh directory on the node, owned by the node account; removed afterwards."""
    return node_workdir_factory()


# --- the panel's own infrastructure, private to a test (tests/testbed/services.py) -------------------


@pytest.fixture(scope="session")
def private_postgres() -> Iterator[services.PrivatePostgres]:
    """A PostgreSQL cluster of this session's own (its port, its socket directory): tests stop, restart
    and cut its connections. The panel's schema is migrated into its database `ccp` once."""
    try:
        server = services.start_private_postgres()
    except (services.ServiceUnavailable, subprocess.CalledProcessError) as error:
        unavailable(f"could not start a private PostgreSQL: {getattr(error, 'stderr', '') or error}")
    try:
        server.sql("CREATE DATABASE ccp")
        migrate = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput"],
            cwd=Path(__file__).resolve().parents[2],
            env={**os.environ, "DATABASE_URL": server.url("ccp"), "DJANGO_SETTINGS_MODULE": "ccp.test_settings"},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if migrate.returncode:
            pytest.fail(f"migrating the private PostgreSQL failed:\n{migrate.stdout}\n{migrate.stderr}")
        yield server
    finally:
        services.remove_private_postgres(server)


@pytest.fixture
def private_redis() -> Iterator[services.PrivateRedis]:
    """A redis-server of this test's own, without persistence; stopped and removed afterwards."""
    try:
        server = services.start_private_redis()
    except services.ServiceUnavailable as error:
        unavailable(str(error))
    yield server
    server.stop()
    shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture
def private_broker(private_redis: services.PrivateRedis, settings) -> Iterator[services.PrivateRedis]:
    """The Celery app of this process sends to (and in-process workers consume from) the private Redis."""

    def point_at(url: str) -> None:
        # Celery reads CELERY_BROKER_URL from the environment before its configuration.
        os.environ["CELERY_BROKER_URL"] = app.conf["broker_url"] = url
        app._pool = None
        app.amqp._producer_pool = None

    before_env, before_conf = os.environ.get("CELERY_BROKER_URL"), app.conf["broker_url"]
    settings.CELERY_BROKER_URL = private_redis.url
    point_at(private_redis.url)
    yield private_redis
    point_at(before_conf)
    if before_env is None:
        os.environ.pop("CELERY_BROKER_URL", None)
    else:
        os.environ["CELERY_BROKER_URL"] = before_env


@dataclass(frozen=True)
class PrivatePanel:
    postgres: services.PrivatePostgres
    redis: services.PrivateRedis
    database_url: str

    def worker_env(self, **extra: str) -> dict[str, str]:
        """Environment of a worker process that runs against the private database and broker."""
        from django.conf import settings

        return {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "CELERY_BROKER_URL": self.redis.url,
            "DJANGO_SETTINGS_MODULE": "ccp.test_settings",
            "SECRET_KEY": settings.SECRET_KEY,
            "CCP_ENCRYPTION_KEYS": ",".join(settings.CCP_ENCRYPTION_KEYS),
            **extra,
        }


@pytest.fixture
def private_panel(transactional_db, private_postgres, private_broker) -> Iterator[PrivatePanel]:
    """This test's panel — its own code, and the workers it starts — on the private PostgreSQL and Redis.

    The default connection is pointed at the private database for the test (every thread's connection
    shares these settings) and back afterwards; the private database is flushed at the end."""
    from django.core.management import call_command
    from django.db import connections

    connection = connections["default"]
    connection.close()
    before = dict(connection.settings_dict)
    connection.settings_dict.update(
        NAME="ccp", HOST="127.0.0.1", PORT=str(private_postgres.port), USER=private_postgres.user, PASSWORD=""
    )
    try:
        yield PrivatePanel(postgres=private_postgres, redis=private_broker, database_url=private_postgres.url("ccp"))
    finally:
        try:
            private_postgres.start_if_stopped()
            connection.close()
            call_command("flush", interactive=False, verbosity=0)
        finally:
            connection.close()
            connection.settings_dict.clear()
            connection.settings_dict.update(before)
