"""The panel's own infrastructure, private to a test: a PostgreSQL cluster (initdb + pg_ctl on a port
and socket directory of its own) and a Redis server, which a test may stop, restart or cut off without
touching the machine's services."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path


def _pg_bin() -> Path:
    """Where initdb and pg_ctl are: on PATH (e.g. /usr/local/bin), or Debian's versioned folder."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]))
    return versions[-1].parent if versions else Path("/usr/local/bin")


PG_BIN = _pg_bin()
PG_USER = "postgres"  # initdb refuses root: the cluster belongs to this account


class ServiceUnavailable(Exception):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_port(port: int, *, up: bool, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                answered = True
        except OSError:
            answered = False
        if answered == up:
            return
        time.sleep(0.1)
    raise ServiceUnavailable(f"port {port} still {'closed' if up else 'open'} after {timeout} s")


def postgres_problem() -> str | None:
    for tool in ("initdb", "pg_ctl", "psql"):
        if not (PG_BIN / tool).exists() and not shutil.which(tool):
            return f"{tool} is not installed (apt-get install postgresql)"
    try:
        pwd.getpwnam(PG_USER)
    except KeyError:
        return f"there is no {PG_USER} account to own a private cluster"
    return None


@dataclass
class PrivatePostgres:
    """A PostgreSQL cluster in a temporary directory, on its own port, run as the postgres account."""

    root: Path
    port: int
    user: str = PG_USER
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.root / "server.log"

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, name: str) -> str:
        return f"postgres://{self.user}@127.0.0.1:{self.port}/{name}"

    def _as_owner(self, *argv: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        prefix = ["runuser", "-u", self.user, "--"] if os.geteuid() == 0 else []
        return subprocess.run(
            [*prefix, *argv], capture_output=True, text=True, timeout=timeout, check=check, cwd=self.root
        )

    def init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            account = pwd.getpwnam(self.user)
            os.chown(self.root, account.pw_uid, account.pw_gid)
        self._as_owner(
            str(PG_BIN / "initdb"), "-D", str(self.data), "-U", self.user, "--auth=trust", "--no-sync", "-E", "UTF8"
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._as_owner(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")
        _wait_port(self.port, up=True)

    def running(self) -> bool:
        status = self._as_owner(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "status", check=False)
        return status.returncode == 0

    def start_if_stopped(self) -> None:
        if not self.running():
            self.start()

    def stop(self, mode: str = "fast") -> None:
        self._as_owner(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop", check=False)
        _wait_port(self.port, up=False)

    def restart(self, mode: str = "fast") -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._as_owner(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-m",
            mode,
            "-w",
            "restart",
        )
        _wait_port(self.port, up=True)

    def sql(self, statement: str, database: str = "postgres") -> str:
        """Run one statement with psql as the superuser; returns its unaligned output."""
        psql = shutil.which("psql") or str(PG_BIN / "psql")
        done = self._as_owner(
            psql, "-h", "127.0.0.1", "-p", str(self.port), "-d", database, "-AtX", "-v", "ON_ERROR_STOP=1",
            "-c", statement,
        )  # fmt: skip
        return done.stdout.strip()


def start_private_postgres() -> PrivatePostgres:
    problem = postgres_problem()
    if problem:
        raise ServiceUnavailable(problem)
    root = Path(tempfile.mkdtemp(prefix="ccp-pg-"))
    server = PrivatePostgres(root=root, port=free_port())
    server.init()
    server.start()
    return server


def remove_private_postgres(server: PrivatePostgres) -> None:
    server.stop(mode="immediate")
    shutil.rmtree(server.root, ignore_errors=True)


@dataclass
class PrivateRedis:
    """A redis-server on its own port, without persistence: a restart loses what it held, like a real
    Redis restarted without a disk."""

    root: Path
    port: int
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.root)],
            stdout=(self.root / "redis.log").open("ab"),
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        _wait_port(self.port, up=True)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        self.process = None
        _wait_port(self.port, up=False)


def start_private_redis() -> PrivateRedis:
    if not shutil.which("redis-server"):
        raise ServiceUnavailable("redis-server is not installed (apt-get install redis-server)")
    server = PrivateRedis(root=Path(tempfile.mkdtemp(prefix="ccp-redis-")), port=free_port())
    server.start()
    return server
