"""Relative paths inside an instance directory.

Every path the engine writes or reads comes from a manifest, and a manifest ships with a release. A bad
one must not be able to reach outside the tenant's directory on the node, so paths are checked on load,
on render and on write.
"""

import re
from pathlib import PurePosixPath

from .errors import UnsafePathError

_BAD_CHARS = re.compile(r"[\x00-\x1f\x7f\\]")


def safe_relpath(path: str) -> str:
    """Return `path` unchanged if it is a plain relative POSIX path inside its base directory.

    Refused: empty paths, absolute paths, `~` paths, `..` or `.` components, empty components (`a//b`),
    backslashes and control characters. Such names could resolve elsewhere on the node, or be read
    differently by the shell, tar or SFTP than by us.
    """
    if not isinstance(path, str) or not path:
        raise UnsafePathError(f"Refusing an empty path: {path!r}.")
    if _BAD_CHARS.search(path):
        raise UnsafePathError(f"Refusing path {path!r}: it contains a backslash or a control character.")
    if path.startswith(("/", "~")):
        raise UnsafePathError(f"Refusing path {path!r}: only paths relative to the instance directory are allowed.")
    parts = path.rstrip("/").split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise UnsafePathError(f"Refusing path {path!r}: '.', '..' and empty components are not allowed.")
    return path


def is_within(path: str, directory: str) -> bool:
    """True if relative `path` is `directory` itself or below it (both relative, `directory` may end in /)."""
    base = PurePosixPath(directory.rstrip("/"))
    candidate = PurePosixPath(path.rstrip("/"))
    return candidate == base or base in candidate.parents
