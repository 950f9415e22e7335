"""The node is this host: subprocesses and the local file system."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from .base import DEFAULT_FILE_MODE, QUIET_TICK, Driver, Result, as_argv
from .errors import CommandFailed, CommandTimeout, DriverError, PathNotFound
from .streams import CommandInput, CommandOutput, Tail

# After SIGTERM, how long a timed-out command's process group gets before SIGKILL (as `timeout -k`).
KILL_GRACE = 5.0


class LocalDriver(Driver):
    """Runs commands as the panel's own user. Each command leads a process group of its own, so a
    timeout ends everything it started."""

    def __init__(self, label: str = "localhost"):
        self.label = label

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
        if cwd is not None and not os.path.isdir(cwd):
            # What `cd` in a shell would say, so callers see the same thing on every driver.
            return self._checked(Result(2, b"", f"cd: {cwd}: No such directory\n".encode()), argv, check)
        try:
            process = self._spawn(argv, cwd=cwd, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL)
        except FileNotFoundError:
            return self._checked(Result(127, b"", f"{argv[0]}: not found\n".encode()), argv, check)
        except PermissionError:
            return self._checked(Result(126, b"", f"{argv[0]}: Permission denied\n".encode()), argv, check)
        try:
            if on_output is None:
                stdout, stderr = process.communicate(stdin, timeout=timeout)
            else:
                stdout, stderr = _communicate_live(process, stdin, timeout, on_output)
        except subprocess.TimeoutExpired:
            _end_group(process)
            stdout, stderr = _drain_pipes(process)
            raise CommandTimeout(node=self.label, argv=argv, timeout=timeout or 0, stdout=stdout, stderr=stderr)
        return self._checked(Result(_exit_code(process.returncode), stdout, stderr), argv, check)

    def _checked(self, result: Result, argv: list[str], check: bool) -> Result:
        if check and not result.ok:
            raise CommandFailed(
                node=self.label, argv=argv, exit_code=result.exit_code, stdout=result.stdout, stderr=result.stderr
            )
        return result

    def _spawn(self, argv: list[str], *, stdin: int, cwd: str | None = None) -> subprocess.Popen:
        # New session: the command and all it starts form one process group we can end together.
        return subprocess.Popen(
            argv,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            start_new_session=True,
            bufsize=0,
        )

    def _spawn_stream(self, argv: list[str], *, stdin: int) -> subprocess.Popen:
        """As `_spawn`, but a command that cannot start fails as it would through a shell (127/126)."""
        try:
            return self._spawn(argv, stdin=stdin)
        except (FileNotFoundError, PermissionError) as error:
            code = 127 if isinstance(error, FileNotFoundError) else 126
            raise CommandFailed(
                node=self.label, argv=argv, exit_code=code, stderr=f"{argv[0]}: {error.strerror}\n".encode()
            ) from None

    @contextmanager
    def open_stream_out(self, argv: Sequence[str]) -> Iterator[CommandOutput]:
        argv = as_argv(argv)
        process = self._spawn_stream(argv, stdin=subprocess.DEVNULL)
        stderr = Tail()
        stderr.drain_in_background(process.stderr.read)  # type: ignore[union-attr]
        reader = CommandOutput(process.stdout.read)  # type: ignore[union-attr]
        try:
            yield reader
            if not reader.at_eof:
                _end_group(process)  # the caller stopped reading: end the command, no error
                return
            code = _exit_code(process.wait())
            stderr.join()
            if code != 0:
                raise CommandFailed(node=self.label, argv=argv, exit_code=code, stderr=stderr.data)
        finally:
            if process.returncode is None:
                _end_group(process)
            _close_pipes(process)

    @contextmanager
    def open_stream_in(self, argv: Sequence[str]) -> Iterator[CommandInput]:
        argv = as_argv(argv)
        process = self._spawn_stream(argv, stdin=subprocess.PIPE)
        stdout, stderr = Tail(), Tail()
        stdout.drain_in_background(process.stdout.read)  # type: ignore[union-attr]
        stderr.drain_in_background(process.stderr.read)  # type: ignore[union-attr]

        def send_all(data: bytes | memoryview) -> None:
            try:
                _write_all(process.stdin, data)  # type: ignore[arg-type]
            except BrokenPipeError:
                # The command stopped reading, i.e. it failed: report its exit code and stderr.
                code = _exit_code(process.wait())
                stderr.join()
                raise CommandFailed(node=self.label, argv=argv, exit_code=code, stderr=stderr.data) from None

        writer = CommandInput(send_all)
        try:
            yield writer
            process.stdin.close()  # type: ignore[union-attr]
            code = _exit_code(process.wait())
            stdout.join()
            stderr.join()
            writer.finished(code, stdout, stderr)
            if code != 0:
                raise CommandFailed(node=self.label, argv=argv, exit_code=code, stdout=stdout.data, stderr=stderr.data)
        finally:
            if process.returncode is None:
                _end_group(process)
            _close_pipes(process)

    # -- files ----------------------------------------------------------------------------------

    def read_file(self, path: str) -> bytes:
        try:
            with open(path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise PathNotFound(f"{path} does not exist on node {self.label}.", node=self.label) from None
        except OSError as error:
            raise DriverError(f"Cannot read {path} on node {self.label}: {error.strerror}.", node=self.label) from None

    def write_file(self, path: str, data: bytes, mode: int | None = None) -> None:
        path = os.path.realpath(path)  # a symlinked file stays a link; its target changes
        directory, name = os.path.split(path)
        try:
            current = os.stat(path)
        except FileNotFoundError:
            current = None
        final_mode = mode if mode is not None else (current.st_mode & 0o7777 if current else DEFAULT_FILE_MODE)
        try:
            # mkstemp creates the file 0600: secrets are never readable by others, not even briefly.
            fd, temp = tempfile.mkstemp(prefix=f".{name}.", suffix=".ccp-tmp", dir=directory or ".")
        except OSError as error:
            raise DriverError(f"Cannot write {path} on node {self.label}: {error.strerror}.", node=self.label) from None
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())  # the rename must not publish a file whose data is still in flight
            if current is not None and os.geteuid() == 0:
                os.chown(temp, current.st_uid, current.st_gid)
            os.chmod(temp, final_mode)
            os.replace(temp, path)
        except BaseException:
            _unlink_quietly(temp)
            raise

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def close(self) -> None:
        """Nothing to release."""


def _exit_code(returncode: int) -> int:
    # Killed by a signal: report it the way a shell (and sshd's `timeout`) would, 128 + signal.
    return 128 - returncode if returncode < 0 else returncode


def _end_group(process: subprocess.Popen) -> None:
    """TERM the command's process group, KILL what is left after a grace period, reap the leader."""
    if process.returncode is not None:
        return
    group = process.pid
    try:
        os.killpg(group, signal.SIGTERM)
    except ProcessLookupError:
        process.wait()
        return
    deadline = time.monotonic() + KILL_GRACE
    while time.monotonic() < deadline:
        # WNOWAIT: the leader stays a zombie, so the group id cannot be reused before the KILL below.
        if os.waitid(os.P_PID, group, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
            break
        time.sleep(0.02)
    try:
        os.killpg(group, signal.SIGKILL)  # whatever the leader left behind, or a leader ignoring TERM
    except ProcessLookupError:
        pass
    process.wait()


def _communicate_live(
    process: subprocess.Popen, stdin: bytes | None, timeout: float | None, on_output: Callable[[bytes], None]
) -> tuple[bytes, bytes]:
    """`communicate`, handing each chunk of stdout and stderr to `on_output` in this thread as it arrives."""
    chunks: queue.SimpleQueue[tuple[int, bytes]] = queue.SimpleQueue()

    def pump(index: int, pipe) -> None:
        while chunk := pipe.read(32768):
            chunks.put((index, chunk))
        chunks.put((index, b""))

    if process.stdin is not None:
        threading.Thread(target=_feed_and_close, args=(process.stdin, stdin or b""), daemon=True).start()
    for index, pipe in enumerate((process.stdout, process.stderr)):
        threading.Thread(target=pump, args=(index, pipe), daemon=True).start()
    collected, open_pipes = (bytearray(), bytearray()), 2
    deadline = None if timeout is None else time.monotonic() + timeout
    while open_pipes:
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            raise subprocess.TimeoutExpired(process.args, timeout)
        try:
            index, chunk = chunks.get(timeout=min(remaining or QUIET_TICK, QUIET_TICK))
        except queue.Empty:
            on_output(b"")  # quiet: the caller may store what it holds
            continue
        if not chunk:
            open_pipes -= 1
            continue
        collected[index].extend(chunk)
        on_output(chunk)
    process.wait(timeout=None if deadline is None else max(deadline - time.monotonic(), 0.1))
    return bytes(collected[0]), bytes(collected[1])


def _feed_and_close(pipe, data: bytes) -> None:
    try:
        _write_all(pipe, data)
        pipe.close()
    except OSError:
        pass  # the command stopped reading: its exit code says why


def _drain_pipes(process: subprocess.Popen) -> tuple[bytes, bytes]:
    try:
        stdout, stderr = process.communicate(timeout=KILL_GRACE)
    except (subprocess.TimeoutExpired, ValueError, OSError):
        return b"", b""
    return stdout or b"", stderr or b""


def _close_pipes(process: subprocess.Popen) -> None:
    for pipe in (process.stdin, process.stdout, process.stderr):
        if pipe is not None:
            try:
                pipe.close()
            except OSError:
                pass


def _write_all(pipe, data: bytes | memoryview) -> None:  # noqa: ANN001 - a raw FileIO
    view = memoryview(data).cast("B")
    while view:
        written = pipe.write(view)
        view = view[written:]


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
