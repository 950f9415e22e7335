"""The one interface every layer above uses to reach a node (DESIGN.md §5)."""

from __future__ import annotations

import os
import posixpath
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType

from . import scripts
from .errors import CommandFailed, DriverError
from .streams import CommandInput, CommandOutput

# New files get this mode unless the caller says otherwise (existing files keep theirs).
DEFAULT_FILE_MODE = 0o644
# A running job's log is read at most this much per poll, so polls stay cheap.
POLL_LOG_LIMIT = 1024 * 1024
# While a command run with `on_output` is quiet, the caller hears from it this often (an empty chunk).
QUIET_TICK = 1.0


@dataclass(frozen=True)
class Result:
    """What a finished command left behind."""

    exit_code: int
    stdout: bytes
    stderr: bytes

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


@dataclass(frozen=True)
class JobStatus:
    """A detached job as seen by one poll. `output` is the log from the polled offset up to `offset`.

    `running=False, exit_code=None` means the job died without recording an exit code (killed, or
    the node rebooted).
    """

    running: bool
    exit_code: int | None
    output: bytes
    offset: int


def as_argv(argv: Sequence[str | os.PathLike[str]]) -> list[str]:
    if isinstance(argv, str | bytes) or not argv:
        raise ValueError("a command is a non-empty list of arguments, not a string")
    return [os.fspath(arg) for arg in argv]


class Driver(ABC):
    """Runs commands and moves files on one node.

    Commands are argv lists; on a remote node the command line is `shlex.join(argv)` and nothing
    else. `label` names the node in error messages.
    """

    label: str = "node"

    # -- commands -------------------------------------------------------------------------------

    @abstractmethod
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
        """Run a command to completion. On timeout the command (and its process group) is ended on
        the node and `CommandTimeout` is raised; `check=True` raises `CommandFailed` on exit ≠ 0.
        `on_output(chunk)` sees stdout and stderr as they arrive (in the calling thread), for a step
        that shows a long command's output live; the Result holds all of it as well. While the command
        is quiet it is called with b"" about once a second, so the caller can store what it holds."""

    @abstractmethod
    def open_stream_out(self, argv: Sequence[str]) -> AbstractContextManager[CommandOutput]:
        """Read a command's stdout as a stream (`tar czf -`, `docker save`). Raises `CommandFailed`
        when the block ends if the command exited non-zero after its output was read to the end; a
        block that stops reading early ends the command instead."""

    @abstractmethod
    def open_stream_in(self, argv: Sequence[str]) -> AbstractContextManager[CommandInput]:
        """Write a command's stdin as a stream (`tar xzf -`, `docker load`). When the block ends,
        stdin is closed, the command awaited, and `CommandFailed` raised if it exited non-zero."""

    # -- files ----------------------------------------------------------------------------------

    @abstractmethod
    def read_file(self, path: str) -> bytes:
        """The file's bytes; `PathNotFound` (a `FileNotFoundError`) when it does not exist."""

    @abstractmethod
    def write_file(self, path: str, data: bytes, mode: int | None = None) -> None:
        """Replace the file atomically: readers see the old or the new content, never a mix.
        A path that is a symlink stays one: the file it points to is the one replaced.
        `mode=None` keeps an existing file's mode; new files get 0644."""

    @abstractmethod
    def exists(self, path: str) -> bool:
        """Whether the path exists (symlinks followed)."""

    def checksums(
        self, paths: Sequence[str], base: str | None = None, *, timeout: float | None = 600
    ) -> dict[str, str]:
        """sha256 of every regular file under `paths`, computed on the node. Keys are relative to
        `base` when given (relative `paths` are resolved against it), else the paths as found.
        Missing paths contribute nothing; unreadable files raise `CommandFailed`."""
        root = base or "."
        # "./" keeps find from reading a name like "-delete" or "(" as an expression.
        args = [posixpath.relpath(p, root) if base and posixpath.isabs(p) else p for p in paths]
        args = [p if posixpath.isabs(p) else "./" + p for p in args]
        if not args:
            return {}
        argv = ["sh", "-c", scripts.CHECKSUMS, "ccp-checksums", root, *args]
        result = self.run(argv, timeout=timeout, check=True)
        return parse_checksums(result.stdout)

    # -- detached jobs --------------------------------------------------------------------------

    def start_detached(self, argv: Sequence[str], job_dir: str, *, cwd: str | None = None) -> str:
        """Start a job that outlives this connection and this process; returns its id. The job's
        `log`, `pid` and `rc` files live in `job_dir/<id>/` (callers use `<install_dir>/.ccp/jobs`)."""
        argv = as_argv(argv)
        job_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:8]
        job = posixpath.join(job_dir, job_id)
        script = ["sh", "-c", scripts.START_DETACHED, "ccp-start", scripts.DETACHED_RUNNER, job, cwd or ""]
        self.run([*script, *argv], timeout=60, check=True)
        return job_id

    def poll_detached(self, job_dir: str, job_id: str, offset: int = 0) -> JobStatus:
        """The job's state and its log from `offset`. Once `running` is False the output is whole."""
        job = posixpath.join(job_dir, _job_id(job_id))
        argv = ["sh", "-c", scripts.POLL_DETACHED, "ccp-poll", job, str(offset), str(POLL_LOG_LIMIT)]
        result = self.run(argv, timeout=60)
        if result.exit_code == 3:
            raise DriverError(f"There is no detached job {job_id} in {job_dir} on node {self.label}.", node=self.label)
        if not result.ok:
            raise CommandFailed(node=self.label, argv=["poll", job], exit_code=result.exit_code, stderr=result.stderr)
        state, _, output = result.stdout.partition(b"\n")
        return job_status(state.decode(), output, offset)

    def stop_detached(self, job_dir: str, job_id: str, *, grace: int = 5) -> str:
        """End a running job and everything it started (TERM, then KILL after `grace` s); its state then
        reads `exited 143`. Returns what was done, in words."""
        job = posixpath.join(job_dir, _job_id(job_id))
        argv = ["sh", "-c", scripts.STOP_DETACHED, "ccp-stop", job, str(int(grace))]
        result = self.run(argv, timeout=grace + 30)
        if result.exit_code == 3:
            raise DriverError(f"There is no detached job {job_id} in {job_dir} on node {self.label}.", node=self.label)
        if not result.ok:
            raise CommandFailed(node=self.label, argv=["stop", job], exit_code=result.exit_code, stderr=result.stderr)
        return result.stdout.decode(errors="replace").strip()

    # -- lifetime -------------------------------------------------------------------------------

    @abstractmethod
    def close(self) -> None:
        """Release the connection (a later call reconnects)."""

    def __enter__(self) -> Driver:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _job_id(job_id: str) -> str:
    if "/" in job_id or job_id in ("", ".", ".."):
        raise ValueError(f"not a job id: {job_id!r}")
    return job_id


def parse_checksums(output: bytes) -> dict[str, str]:
    """`sha256sum -z` output → {normalised path: hex digest}."""
    sums: dict[str, str] = {}
    for record in output.split(b"\0"):
        if not record:
            continue
        # "<64 hex><space><space or *><name>"
        digest, name = record[:64].decode("ascii"), record[66:].decode("utf-8", errors="surrogateescape")
        sums[posixpath.normpath(name)] = digest
    return sums


def job_status(state: str, output: bytes, offset: int) -> JobStatus:
    if state == "running":
        return JobStatus(running=True, exit_code=None, output=output, offset=offset + len(output))
    if state.startswith("exited "):
        code = state.removeprefix("exited ").strip()
        return JobStatus(
            running=False, exit_code=int(code) if code.isdigit() else None, output=output, offset=offset + len(output)
        )
    return JobStatus(running=False, exit_code=None, output=output, offset=offset + len(output))
