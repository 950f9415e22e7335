"""Errors of the execution drivers: one sentence an operator can act on, naming the node."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from ccp.errors import CCPError

# How much of a failed command's stderr an error message quotes.
STDERR_TAIL_CHARS = 600


def _tail(data: bytes, limit: int = STDERR_TAIL_CHARS) -> str:
    text = data.decode("utf-8", errors="replace").strip()
    return text if len(text) <= limit else "…" + text[-limit:]


def command_line(argv: Sequence[str], limit: int = 200) -> str:
    """The command as an operator would type it, shortened for messages."""
    text = shlex.join(argv)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class DriverError(CCPError):
    """Reaching or using a node failed. `node` is how messages name it (`address:port`)."""

    http_status = 502

    def __init__(self, message: str, *, node: str = ""):
        super().__init__(message)
        self.node = node


class NodeUnreachable(DriverError):
    """No SSH session could be opened: refused, unknown name, no route, timeout, not an SSH server."""


class AuthenticationFailed(DriverError):
    """The node did not accept the panel's key for the node account (or the key cannot be read)."""


class HostKeyMismatch(DriverError):
    """The node presented a host key other than the pinned one; nothing was sent to it."""

    def __init__(self, *, node: str, pinned_fingerprint: str, offered_key: tuple[str, str], offered_fingerprint: str):
        super().__init__(
            f"The host key of node {node} has changed: the panel pinned {pinned_fingerprint}, but the node "
            f"presented {offered_fingerprint} ({offered_key[0]}). Nothing was run on it. If the node was "
            "reinstalled or its keys were rotated on purpose, a staff member must re-pin its host key; "
            "otherwise someone may be intercepting the connection.",
            node=node,
        )
        self.pinned_fingerprint = pinned_fingerprint
        self.offered_key = offered_key
        self.offered_fingerprint = offered_fingerprint


class PathNotFound(DriverError, FileNotFoundError):
    """A file the caller asked for does not exist on the node (also a `FileNotFoundError`)."""


class CommandFailed(DriverError):
    """A command ran and exited non-zero. Carries everything needed to show or retry it."""

    def __init__(self, *, node: str, argv: Sequence[str], exit_code: int, stdout: bytes = b"", stderr: bytes = b""):
        detail = _tail(stderr) or _tail(stdout)
        super().__init__(
            f"`{command_line(argv)}` failed on node {node} with exit code {exit_code}"
            + (f": {detail}" if detail else "."),
            node=node,
        )
        self.argv = list(argv)
        self.exit_code = exit_code
        self.stdout = stdout
        self.stderr = stderr


class CommandTimeout(DriverError):
    """A command ran longer than its time limit; it was ended on the node."""

    http_status = 504

    def __init__(self, *, node: str, argv: Sequence[str], timeout: float, stdout: bytes = b"", stderr: bytes = b""):
        super().__init__(
            f"`{command_line(argv)}` on node {node} did not finish within {timeout:g} s and was stopped.",
            node=node,
        )
        self.argv = list(argv)
        self.timeout = timeout
        self.stdout = stdout
        self.stderr = stderr
