"""A node reached over SSH with paramiko: one connection reused for every step, SFTP for files.

Connecting (keys, host key pinning, login) lives in `ssh_connect`. The node account's login shell
must be a POSIX shell: it parses the `shlex.join` command lines.
"""

from __future__ import annotations

import errno
import select
import shlex
import stat
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from posixpath import basename, dirname, join, normpath
from typing import TypeVar

import paramiko
from paramiko.sftp import CMD_HANDLE, CMD_OPEN, SFTP_FLAG_CREATE, SFTP_FLAG_EXCL, SFTP_FLAG_WRITE

from .base import DEFAULT_FILE_MODE, QUIET_TICK, Driver, Result, as_argv
from .errors import CommandFailed, CommandTimeout, DriverError, HostKeyMismatch, NodeUnreachable, PathNotFound
from .ssh_connect import Endpoint, HostKey, NewHostKeyCallback, describe, load_client_key, open_transport
from .streams import CommandInput, CommandOutput, Tail

# A streamed command that neither sends nor accepts data for this long is considered stuck.
STREAM_IDLE_TIMEOUT = 600.0
# `timeout` on the node ends a command at its limit (TERM, then KILL after this grace period); the
# panel waits that long plus a margin before it gives up on the channel itself.
REMOTE_KILL_GRACE = 5
CLIENT_MARGIN = 10.0
# How `timeout` reports it ended the command: 124 after TERM; after KILL it signals its own process
# group, itself included, so sshd reports a signal (paramiko: -1) or, for some builds, 137.
TIMED_OUT = (124, 137, -1)
# SFTP writes are pipelined (no wait for each acknowledgement). paramiko sends 32 KiB per request,
# the minimum the protocol guarantees; OpenSSH's sftp-server takes messages up to 256 KiB, and
# 128 KiB requests measured ~40 % faster here (~200 -> ~280 MB/s). Data is handed over 1 MiB at a time.
SFTP_WRITE_REQUEST = 128 * 1024
WRITE_CHUNK = 1024 * 1024
RECV_SIZE = 256 * 1024
# Several operations share one connection (a worker runs many at once in threads). OpenSSH allows 10
# sessions per connection (MaxSessions): commands and streams take at most this many at a time, so
# the one SFTP session and a nested stream always find room. A thread's nested channels reuse its slot.
MAX_COMMAND_SESSIONS = 8
SESSION_RETRY_SECONDS = 5.0
# Symlinks followed before a write gives up (Linux's own limit).
MAX_SYMLINKS = 40

T = TypeVar("T")


class SessionRefused(DriverError):
    """sshd refused one more session on a live connection (MaxSessions)."""


def remote_command(argv: Sequence[str], *, cwd: str | None = None, timeout: float | None = None) -> str:
    """The command line the node's shell runs: only `shlex.join` of argv, with fixed wrappers."""
    if timeout is not None:
        # GNU timeout leads its own process group and signals all of it: the command and everything
        # it started end on the node, even if this connection is gone by then.
        argv = ["timeout", "-k", str(REMOTE_KILL_GRACE), f"{timeout:.3f}", *argv]
    line = "exec " + shlex.join(argv)
    if cwd:
        line = shlex.join(["cd", "--", cwd]) + " && " + line
    return line


class SSHDriver(Driver):
    """One node over one SSH connection, opened on first use and reopened if it dropped."""

    def __init__(
        self,
        host: str,
        port: int = 22,
        username: str = "root",
        *,
        pkey_text: str | None = None,
        key_path: str | None = None,
        pinned_host_key: HostKey | None = None,
        on_new_host_key: NewHostKeyCallback | None = None,
        on_host_key_mismatch: Callable[[HostKeyMismatch], None] | None = None,
        connect_timeout: float = 10,
    ):
        self.host, self.port, self.username = host, port, username
        self.label = f"{host}:{port}"
        self.connect_timeout = connect_timeout
        key = load_client_key(pkey_text=pkey_text, key_path=key_path, node=self.label)
        self._endpoint = Endpoint(host, port, username, key, connect_timeout)
        self.pinned_host_key = pinned_host_key if pinned_host_key and pinned_host_key[1] else None
        self._on_new_host_key = on_new_host_key
        self._on_host_key_mismatch = on_host_key_mismatch
        self._transport: paramiko.Transport | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self._lock = threading.RLock()
        # paramiko's SFTPClient is not safe for concurrent requests: one file operation at a time.
        self._sftp_lock = threading.Lock()
        self._sessions = threading.BoundedSemaphore(MAX_COMMAND_SESSIONS)
        self._thread = threading.local()
        self._busy = 0
        self.last_used = time.monotonic()

    @property
    def key_fingerprint(self) -> str:
        return self._endpoint.key.fingerprint

    # -- connection -----------------------------------------------------------------------------

    def connect(self) -> paramiko.Transport:
        """The live connection, opening one if needed (also the "test connection" of a node)."""
        with self._lock:
            if self._transport is not None and self._transport.is_active():
                return self._transport
            self._drop()
            try:
                self._transport, self.pinned_host_key = open_transport(
                    self._endpoint, pinned_host_key=self.pinned_host_key, on_new_host_key=self._on_new_host_key
                )
            except HostKeyMismatch as mismatch:
                if self._on_host_key_mismatch is not None:
                    self._on_host_key_mismatch(mismatch)  # reports it (a notification); must not raise
                raise
            return self._transport

    def live_host_key(self) -> HostKey | None:
        """(type, base64) of the key the node presented on the live connection; None when not connected."""
        with self._lock:
            if not self.connected:
                return None
            key = self._transport.get_remote_server_key()
            return key.get_name(), key.get_base64()

    @property
    def connected(self) -> bool:
        return self._transport is not None and self._transport.is_active()

    def _unreachable(self, reason: str) -> NodeUnreachable:
        return self._endpoint.unreachable(reason)

    def _drop(self) -> None:
        sftp, transport = self._sftp, self._transport
        self._sftp = self._transport = None
        for closable in (sftp, transport):
            if closable is not None:
                try:
                    closable.close()
                except Exception:  # noqa: BLE001,S110 - closing a broken connection may fail any way
                    pass

    def close(self) -> None:
        with self._lock:
            self._drop()

    @contextmanager
    def _using(self) -> Iterator[None]:
        """Marks the connection busy, so the pool never closes it in the middle of an operation."""
        with self._lock:
            self._busy += 1
        try:
            yield
        finally:
            with self._lock:
                self._busy -= 1
                self.last_used = time.monotonic()

    @contextmanager
    def _session_slot(self) -> Iterator[None]:
        """Wait for one of the connection's command sessions (a thread's nested ones share its slot)."""
        depth = getattr(self._thread, "depth", 0)
        if depth == 0:
            self._sessions.acquire()
        self._thread.depth = depth + 1
        try:
            yield
        finally:
            self._thread.depth = depth
            if depth == 0:
                self._sessions.release()

    def idle_for(self) -> float | None:
        """Seconds since the last operation ended, or None while one is running."""
        with self._lock:
            return None if self._busy else time.monotonic() - self.last_used

    def _reconnecting(self, open_: Callable[[paramiko.Transport], T]) -> T:
        """`open_(transport)`, retried once on a fresh connection: a pooled one may have died while
        idle (node rebooted, NAT entry expired) without us noticing yet."""
        for attempt in (1, 2):
            transport = self.connect()
            try:
                return open_(transport)
            except paramiko.ChannelException as error:
                # The connection is fine; sshd refused one more session on it (MaxSessions).
                raise SessionRefused(
                    f"Node {self.label} refused a new session: {describe(error)}.", node=self.label
                ) from None
            except (paramiko.SSHException, EOFError, OSError) as error:
                if transport.is_active():
                    # The connection lives and other threads' commands run on it: only this channel
                    # failed to open (in time, under load). Retried as a refusal; never torn down.
                    raise SessionRefused(
                        f"Node {self.label} did not open a new session: {describe(error)}.", node=self.label
                    ) from None
                with self._lock:
                    if self._transport is transport:
                        self._drop()
                if attempt == 2:
                    raise self._unreachable(f"the connection was lost ({describe(error)})") from None
        raise AssertionError("unreachable")

    def _session(self, open_: Callable[[paramiko.Transport], T]) -> T:
        # sshd frees a closed session a moment after our close: a refusal right after many sessions
        # ended is retried briefly before it counts as the node refusing.
        deadline = time.monotonic() + SESSION_RETRY_SECONDS
        while True:
            try:
                return self._reconnecting(open_)
            except SessionRefused:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)

    def _channel(self) -> paramiko.Channel:
        return self._session(lambda transport: transport.open_session(timeout=self.connect_timeout))

    def _sftp_client(self) -> paramiko.SFTPClient:
        with self._lock:
            if self._sftp is None or not self.connected:
                self._sftp = self._session(paramiko.SFTPClient.from_transport)
            return self._sftp

    # -- commands -------------------------------------------------------------------------------

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = 60,
        stdin: bytes | None = None,
        check: bool = False,
        cwd: str | None = None,
        on_output: Callable[[bytes], None] | None = None,
    ) -> Result:
        argv = as_argv(argv)
        with self._using(), self._session_slot():
            channel = self._channel()
            try:
                started = time.monotonic()
                channel.exec_command(remote_command(argv, cwd=cwd, timeout=timeout))
                result = self._collect(channel, argv, stdin, timeout, on_output)
            except (paramiko.SSHException, EOFError, OSError) as error:
                raise self._unreachable(f"the connection broke while running a command ({describe(error)})") from None
            finally:
                channel.close()
        if timeout is not None and result.exit_code in TIMED_OUT and time.monotonic() - started >= timeout:
            raise CommandTimeout(
                node=self.label, argv=argv, timeout=timeout, stdout=result.stdout, stderr=result.stderr
            )
        if check and not result.ok:
            raise CommandFailed(
                node=self.label, argv=argv, exit_code=result.exit_code, stdout=result.stdout, stderr=result.stderr
            )
        return result

    def _collect(
        self,
        channel: paramiko.Channel,
        argv: list[str],
        stdin: bytes | None,
        timeout: float | None,
        on_output: Callable[[bytes], None] | None = None,
    ) -> Result:
        """Feed stdin and read stdout and stderr together until the command ends."""
        deadline = None if timeout is None else time.monotonic() + timeout + REMOTE_KILL_GRACE + CLIENT_MARGIN
        writer = self._feed(channel, stdin)
        stdout, stderr = bytearray(), bytearray()
        while True:
            while channel.recv_ready():
                chunk = channel.recv(RECV_SIZE)
                stdout += chunk
                if on_output is not None:
                    on_output(chunk)
            while channel.recv_stderr_ready():
                chunk = channel.recv_stderr(RECV_SIZE)
                stderr += chunk
                if on_output is not None:
                    on_output(chunk)
            if (channel.eof_received or channel.closed) and not (channel.recv_ready() or channel.recv_stderr_ready()):
                break
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise CommandTimeout(
                    node=self.label, argv=argv, timeout=timeout or 0, stdout=bytes(stdout), stderr=bytes(stderr)
                )
            # The channel's fileno becomes readable when either stream has data or at EOF.
            if on_output is None:
                select.select([channel], [], [], remaining)
            elif not select.select([channel], [], [], min(remaining or QUIET_TICK, QUIET_TICK))[0]:
                on_output(b"")
        if writer is not None:
            writer.join(timeout=self.connect_timeout)
        if not channel.status_event.wait(self.connect_timeout):
            raise self._unreachable("it sent no exit status for a finished command")
        code = channel.recv_exit_status()
        if code == -1 and not channel.get_transport().is_active():
            raise self._unreachable("the connection was lost while a command ran")
        return Result(code, bytes(stdout), bytes(stderr))

    @staticmethod
    def _feed(channel: paramiko.Channel, stdin: bytes | None) -> threading.Thread | None:
        if not stdin:
            channel.shutdown_write()
            return None

        def feed() -> None:
            # A thread, because a command may fill its stdout before it has read all its stdin.
            try:
                channel.sendall(memoryview(stdin))  # a view: sendall's slicing then copies nothing
                channel.shutdown_write()
            except OSError:
                pass  # the command ended without reading everything; its exit code says why

        writer = threading.Thread(target=feed, name="ccp-ssh-stdin", daemon=True)
        writer.start()
        return writer

    def _start_stream(self, argv: list[str]) -> paramiko.Channel:
        channel = self._channel()
        try:
            channel.settimeout(STREAM_IDLE_TIMEOUT)
            channel.exec_command(remote_command(argv))
        except BaseException:
            channel.close()
            raise
        return channel

    def _wait_exit(self, channel: paramiko.Channel) -> int:
        channel.status_event.wait()  # set on exit-status and when the connection dies
        code = channel.recv_exit_status()
        if code == -1 and not channel.get_transport().is_active():
            # No exit status arrived: the connection died under the command, which is not the command failing.
            raise NodeUnreachable(f"The connection to {self.label} was lost while a command ran.", node=self.label)
        return code

    @contextmanager
    def open_stream_out(self, argv: Sequence[str]) -> Iterator[CommandOutput]:
        argv = as_argv(argv)
        with self._using(), self._session_slot():
            channel = self._start_stream(argv)
            try:
                channel.shutdown_write()
                stderr = Tail()
                stderr.drain_in_background(channel.recv_stderr)
                reader = CommandOutput(self._receiver(channel, argv))
                yield reader
                if not reader.at_eof:
                    return  # the caller stopped early; closing the channel ends the command (SIGPIPE)
                code = self._wait_exit(channel)
                stderr.join(self.connect_timeout)
                if code != 0:
                    raise CommandFailed(node=self.label, argv=argv, exit_code=code, stderr=stderr.data)
            finally:
                channel.close()

    def _receiver(self, channel: paramiko.Channel, argv: list[str]) -> Callable[[int], bytes]:
        def receive(size: int) -> bytes:
            try:
                return channel.recv(min(size, RECV_SIZE))
            except TimeoutError:
                raise CommandTimeout(node=self.label, argv=argv, timeout=STREAM_IDLE_TIMEOUT) from None

        return receive

    @contextmanager
    def open_stream_in(self, argv: Sequence[str]) -> Iterator[CommandInput]:
        argv = as_argv(argv)
        with self._using(), self._session_slot():
            channel = self._start_stream(argv)
            try:
                stdout, stderr = Tail(), Tail()
                stdout.drain_in_background(channel.recv)
                stderr.drain_in_background(channel.recv_stderr)
                writer = CommandInput(self._sender(channel, argv, stderr))
                yield writer
                channel.shutdown_write()
                code = self._wait_exit(channel)
                stdout.join(self.connect_timeout)
                stderr.join(self.connect_timeout)
                writer.finished(code, stdout, stderr)
                if code != 0:
                    raise CommandFailed(
                        node=self.label, argv=argv, exit_code=code, stdout=stdout.data, stderr=stderr.data
                    )
            finally:
                channel.close()

    def _sender(self, channel: paramiko.Channel, argv: list[str], stderr: Tail) -> Callable[[memoryview], None]:
        def send_all(data: bytes | memoryview) -> None:
            try:
                channel.sendall(data)
            except TimeoutError:
                raise CommandTimeout(node=self.label, argv=argv, timeout=STREAM_IDLE_TIMEOUT) from None
            except OSError:
                # The command closed its end: it ended early, which means it failed.
                code = self._wait_exit(channel)
                stderr.join(self.connect_timeout)
                raise CommandFailed(node=self.label, argv=argv, exit_code=code, stderr=stderr.data) from None

        return send_all

    # -- files ----------------------------------------------------------------------------------

    def read_file(self, path: str) -> bytes:
        with self._using(), self._sftp_lock:
            sftp = self._sftp_client()
            try:
                with sftp.open(path, "rb") as f:
                    f.prefetch()
                    return f.read()
            except FileNotFoundError:
                raise PathNotFound(f"{path} does not exist on node {self.label}.", node=self.label) from None
            except OSError as error:
                raise self._file_error("read", path, error) from None

    def write_file(self, path: str, data: bytes, mode: int | None = None) -> None:
        with self._using(), self._sftp_lock:
            sftp = self._sftp_client()
            path = _follow_links(sftp, path)  # a symlinked file stays a link; its target changes
            temp = join(dirname(path), f".{basename(path)}.{uuid.uuid4().hex[:12]}.ccp-tmp")
            try:
                final_mode = mode if mode is not None else self._mode_of(sftp, path)
                with _create_private(sftp, temp) as f:
                    f.MAX_REQUEST_SIZE = SFTP_WRITE_REQUEST
                    f.set_pipelined(True)
                    view = memoryview(data)
                    for start in range(0, len(view), WRITE_CHUNK):
                        f.write(view[start : start + WRITE_CHUNK])
                    f.chmod(final_mode)
                sftp.posix_rename(temp, path)
            except BaseException as error:
                _remove_quietly(sftp, temp)
                if isinstance(error, OSError):
                    raise self._file_error("write", path, error) from None
                raise

    @staticmethod
    def _mode_of(sftp: paramiko.SFTPClient, path: str) -> int:
        """The existing file's mode, or the mode of a new file."""
        try:
            return (sftp.stat(path).st_mode or 0) & 0o7777
        except FileNotFoundError:
            return DEFAULT_FILE_MODE

    def exists(self, path: str) -> bool:
        with self._using(), self._sftp_lock:
            try:
                self._sftp_client().stat(path)
            except FileNotFoundError:
                return False
            except OSError as error:
                raise self._file_error("look at", path, error) from None
            return True

    def _file_error(self, verb: str, path: str, error: OSError) -> DriverError:
        reason = error.strerror or str(error) or type(error).__name__
        return DriverError(f"Cannot {verb} {path} on node {self.label} as {self.username}: {reason}.", node=self.label)


@contextmanager
def _create_private(sftp: paramiko.SFTPClient, path: str) -> Iterator[paramiko.SFTPFile]:
    """Create a new file with mode 0600 in the same request, so it is never readable by others.

    paramiko's `open` sends no permissions (the file starts at 0666 & umask); this is its OPEN
    request with the attributes filled in.
    """
    attributes = paramiko.SFTPAttributes()
    attributes.st_mode = 0o600
    flags = SFTP_FLAG_WRITE | SFTP_FLAG_CREATE | SFTP_FLAG_EXCL
    kind, message = sftp._request(CMD_OPEN, sftp._adjust_cwd(path), flags, attributes)  # noqa: SLF001
    if kind != CMD_HANDLE:
        raise paramiko.SFTPError("Expected handle")
    with paramiko.SFTPFile(sftp, message.get_binary(), "wb") as f:
        yield f


def _follow_links(sftp: paramiko.SFTPClient, path: str) -> str:
    """The file a path names once its symlinks are followed (the path itself when it is no link).

    A link's target is joined to the link's folder as it is, never normalised here: `conf/../x`,
    where conf is itself a link, means what the kernel says (the parent of conf's target). The
    folder of the final file is then resolved by the node (SFTP realpath)."""
    for _ in range(MAX_SYMLINKS):
        try:
            if not stat.S_ISLNK(sftp.lstat(path).st_mode or 0):
                return _resolved(sftp, path)
            target = sftp.readlink(path)
        except FileNotFoundError:
            return _resolved(sftp, path)  # a new file, or a dangling link's target that will be created
        path = join(dirname(path), target)
    raise OSError(errno.ELOOP, "too many levels of symbolic links")


def _resolved(sftp: paramiko.SFTPClient, path: str) -> str:
    """`path` with its folder resolved by the node; as it is when the folder does not exist."""
    try:
        return join(sftp.normalize(dirname(path) or "."), basename(path))
    except OSError:
        return normpath(path)


def _remove_quietly(sftp: paramiko.SFTPClient, path: str) -> None:
    try:
        sftp.remove(path)
    except (OSError, paramiko.SSHException, EOFError):
        pass
