"""Real OpenSSH nodes on loopback addresses (DESIGN.md §10).

Each `SSHNode` is an `sshd -D` with a config, host key and client key of its own, listening on one
127.0.0.x address and a free port, letting in only the node account (`ccpnode`) with the client key.
Plain helpers, used by the pytest fixtures and by `bench/`.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

NODE_USER = "ccpnode"
SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
SSH_KEYGEN = shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"
# World-traversable on purpose: sshd reads authorized_keys as the node account.
STATE_ROOT = Path(os.environ.get("CCP_TESTBED_STATE", "/run/ccp-testbed"))
WORKDIR_ROOT = Path(os.environ.get("CCP_TESTBED_WORKDIRS", "/srv/ccp-testbed"))
START_TIMEOUT = 30.0

# 127.0.0.1 is shared with every other local service; nodes start at .2 and count up per process.
_addresses = (f"127.0.0.{n}" for n in itertools.count(2))


class TestbedUnavailable(RuntimeError):
    """Something the testbed needs is missing on this machine; the message says what."""


def sshd_problem() -> str | None:
    """Why real sshd nodes cannot run here, or None when they can."""
    if not Path(SSHD).exists():
        return "OpenSSH server is not installed (apt-get install openssh-server; see tests/testbed/install.sh)"
    if os.geteuid() != 0:
        return "sshd test nodes need root (they log in as another account)"
    try:
        account = pwd.getpwnam(NODE_USER)
    except KeyError:
        return f"the node account {NODE_USER!r} does not exist (run tests/testbed/install.sh)"
    if account.pw_shell != "/bin/sh":
        return f"the node account {NODE_USER!r} must have /bin/sh as its shell (run tests/testbed/install.sh)"
    return None


def free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def generate_key(path: Path, comment: str) -> str:
    """A new ed25519 key pair at `path` (+ `.pub`); returns the private key text (OpenSSH format)."""
    for stale in (path, path.with_name(path.name + ".pub")):
        stale.unlink(missing_ok=True)
    subprocess.run(
        [SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return path.read_text()


def _public_line(private_path: Path) -> str:
    return private_path.with_name(private_path.name + ".pub").read_text().strip()


@dataclass
class SSHNode:
    """One running sshd. `host_key` is (type, base64) of the key it currently presents."""

    host: str
    port: int
    state_dir: Path
    user: str = NODE_USER
    client_key: str = ""
    key_path: str = ""
    host_key: tuple[str, str] = ("", "")
    docker_host: str = ""  # set: every session on this node uses that docker engine (SetEnv DOCKER_HOST)
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def log_path(self) -> Path:
        return self.state_dir / "sshd.log"

    @property
    def host_key_fingerprint(self) -> str:
        """`SHA256:…` as `ssh-keygen -l` prints it."""
        digest = hashlib.sha256(base64.b64decode(self.host_key[1])).digest()
        return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")

    def node_fields(self) -> dict[str, object]:
        """Fields of an `instances.models.Node` reaching this node with the key file (no stored key)."""
        return {
            "address": self.host,
            "ssh_port": self.port,
            "ssh_user": self.user,
            "driver": "ssh",
            "ssh_key_path": self.key_path,
        }

    def _write_config(self) -> Path:
        config = self.state_dir / "sshd_config"
        config.write_text(
            "\n".join(
                (
                    f"ListenAddress {self.host}:{self.port}",
                    f"HostKey {self.state_dir / 'host_key'}",
                    f"PidFile {self.state_dir / 'sshd.pid'}",
                    f"AuthorizedKeysFile {self.state_dir / 'authorized_keys'}",
                    f"AllowUsers {self.user}",
                    # Our own config and files owned by root: no PAM stack, no ownership checks.
                    "UsePAM no",
                    "StrictModes no",
                    "PermitRootLogin no",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "UseDNS no",
                    "PrintMotd no",
                    "PrintLastLog no",
                    "X11Forwarding no",
                    "AllowTcpForwarding no",
                    "Subsystem sftp internal-sftp",
                    "LogLevel VERBOSE",
                    *([f"SetEnv DOCKER_HOST={self.docker_host}"] if self.docker_host else []),
                    "",
                )
            )
        )
        return config

    def _new_host_key(self) -> None:
        generate_key(self.state_dir / "host_key", f"ccp-testbed-host-{self.host}")
        key_type, key_base64 = _public_line(self.state_dir / "host_key").split()[:2]
        self.host_key = (key_type, key_base64)

    def start(self) -> None:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation directory
        config = self._write_config()
        self.process = subprocess.Popen(
            [SSHD, "-D", "-f", str(config), "-E", str(self.log_path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self._wait_for_banner()

    def _wait_for_banner(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                stderr = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                raise TestbedUnavailable(f"sshd on {self.host}:{self.port} exited: {stderr}{self._log_tail()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=2) as s:
                    if s.recv(64).startswith(b"SSH-"):
                        return
            except OSError:
                time.sleep(0.05)
        raise TestbedUnavailable(f"sshd on {self.host}:{self.port} did not answer within {START_TIMEOUT:.0f} s")

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop the listener and every connection it accepted (each runs in a session of its own)."""
        if self.process is None:
            return
        doomed = _descendants(self.process.pid)
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        for pid in doomed:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.process.stderr:
            self.process.stderr.close()
        self.process = None

    def drop_connections(self) -> int:
        """Kill every SSH connection this node serves (what a network drop looks like); keep listening.
        Processes the sessions started in sessions of their own (detached jobs) are not touched."""
        killed = 0
        for pid in _descendants(self.process.pid) if self.process else []:
            try:
                if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"sshd:"):
                    os.kill(pid, signal.SIGKILL)
                    killed += 1
            except (OSError, ProcessLookupError):
                continue
        return killed

    def restart_with_new_host_key(self) -> None:
        """Same address, port and client key; a different host key (what a reinstalled node looks like)."""
        self.stop()
        self._new_host_key()
        self.start()

    def restart_with_new_host_key_keeping_connections(self) -> None:
        """A new host key while connections opened before stay up (sshd's sessions outlive the listener),
        as when a node is re-keyed under a panel that holds a pooled connection."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            if self.process.stderr:
                self.process.stderr.close()
            self.process = None
        self._new_host_key()
        self.start()

    def authorize(self, public_line: str) -> None:
        """Let in another client key as well (e.g. for a second panel key)."""
        with open(self.state_dir / "authorized_keys", "a") as f:
            f.write(public_line.strip() + "\n")


def reap_orphans(state_root: Path = STATE_ROOT) -> list[int]:
    """Stop testbed sshds whose test process died without tearing them down (killed, timed out).
    An orphan's parent is init; nodes of test runs still going have a live parent and are left be."""
    reaped = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # sshd rewrites its title into one string: "sshd: /usr/sbin/sshd -D -f <config> …".
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        config = re.search(rf"sshd -D -f ({re.escape(str(state_root))}/\S+/sshd_config)", title)
        if ppid == 1 and config is not None:
            os.kill(int(entry.name), signal.SIGTERM)
            shutil.rmtree(Path(config.group(1)).parent, ignore_errors=True)
            reaped.append(int(entry.name))
    return reaped


def _descendants(pid: int) -> list[int]:
    """Every live process below `pid`, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses; the fields after the last ')' do not.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    queue = [pid]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


def start_node(
    host: str | None = None, port: int | None = None, state_root: Path = STATE_ROOT, *, docker_host: str = ""
) -> SSHNode:
    """A running sshd node with fresh host and client keys (and, with `docker_host`, a docker engine of
    its own). Call `.stop()` when done."""
    problem = sshd_problem()
    if problem:
        raise TestbedUnavailable(problem)
    host = host or next(_addresses)
    port = port or free_port(host)
    state_root.mkdir(parents=True, exist_ok=True)
    state_root.chmod(0o755)
    state_dir = Path(tempfile.mkdtemp(prefix=f"sshd-{host}-{port}-", dir=state_root))
    state_dir.chmod(0o755)
    node = SSHNode(host=host, port=port, state_dir=state_dir, docker_host=docker_host)
    node.client_key = generate_key(state_dir / "client_key", f"ccp-testbed-client-{uuid.uuid4().hex[:8]}")
    node.key_path = str(state_dir / "client_key")
    (state_dir / "authorized_keys").write_text(_public_line(state_dir / "client_key") + "\n")
    (state_dir / "authorized_keys").chmod(0o644)
    node._new_host_key()
    node.start()
    return node


def make_workdir(prefix: str = "w", root: Path = WORKDIR_ROOT) -> Path:
    """A fresh directory on the node, owned by the node account (the node is this machine)."""
    root.mkdir(parents=True, exist_ok=True)
    account = pwd.getpwnam(NODE_USER)
    os.chown(root, account.pw_uid, account.pw_gid)
    path = Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir=root))
    os.chown(path, account.pw_uid, account.pw_gid)
    path.chmod(0o755)
    return path


def remove_workdir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
