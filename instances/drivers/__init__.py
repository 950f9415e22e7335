"""Execution drivers: how the panel runs commands and moves files on a node (DESIGN.md §5).

`driver_for(node)` is the entry point; everything above it works the same on both drivers.
"""

from .base import Driver, JobStatus, Result
from .errors import (
    AuthenticationFailed,
    CommandFailed,
    CommandTimeout,
    DriverError,
    HostKeyMismatch,
    NodeUnreachable,
    PathNotFound,
)
from .factory import driver_for
from .local import LocalDriver
from .pool import ConnectionPool, close_all, pool
from .ssh import SSHDriver
from .ssh_connect import fingerprint

__all__ = [
    "AuthenticationFailed",
    "CommandFailed",
    "CommandTimeout",
    "ConnectionPool",
    "Driver",
    "DriverError",
    "HostKeyMismatch",
    "JobStatus",
    "LocalDriver",
    "NodeUnreachable",
    "PathNotFound",
    "Result",
    "SSHDriver",
    "close_all",
    "driver_for",
    "fingerprint",
    "pool",
]
