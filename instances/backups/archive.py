"""Moving archives between a node and the backup folder, hashing in the same pass.

Nothing is staged on the node: `tar czf -` (compressing with pigz where the node has it) writes to
the SSH channel, and each chunk is written to the local file and fed to sha256 before the next one
is read.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import tarfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ccp.errors import CCPError

from .manifest import FileEntry

# Local reads (verify, restore) go in chunks of this size.
READ_CHUNK = 1024 * 1024
# Backups hold tenants' .env files in the clear: only the panel's user may read them, whatever its umask.
PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700

Progress = Callable[[str, int], None]  # (file name, bytes so far)


# $1: the install directory; $2…: the entries to archive. The same .tar.gz either way: pigz (parallel
# gzip, every core of the node) when the node has it, else tar's own gzip. tar runs the compressor
# itself and fails when it fails, so no pipe hides an error.
TAR_GZ = r"""
dir=$1
shift
if command -v pigz >/dev/null 2>&1; then compress=--use-compress-program=pigz; else compress=--gzip; fi
exec tar -C "$dir" --numeric-owner "$compress" -cf - -- "$@"
"""


def tar_create_argv(install_dir: str, paths: tuple[str, ...]) -> list[str]:
    # Numeric owners: a restore on the node gives files back the ids they had, whatever the panel's users.
    return ["sh", "-c", TAR_GZ, "ccp-tar", install_dir, *paths]


def make_private_dirs(path: Path, *, below: Path) -> None:
    """Create `path` and any missing folder between `below` and it, each 0700 (`below` itself included).
    Existing folders are tightened too: a BACKUP_ROOT made by an older version was 0755."""
    below.mkdir(parents=True, exist_ok=True)
    folders = [
        below,
        *[below / Path(*path.relative_to(below).parts[:n]) for n in range(1, len(path.relative_to(below).parts) + 1)],
    ]
    for folder in folders:
        folder.mkdir(exist_ok=True)
        os.chmod(folder, PRIVATE_DIR_MODE)


def open_private(target: Path):
    """A new file (never an existing one), 0600 whatever the umask."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    os.fchmod(fd, PRIVATE_FILE_MODE)
    return os.fdopen(fd, "wb")


@contextmanager
def naming(target: Path) -> Iterator[None]:
    """A write error (a full disk) names the file it was writing: a plain file write does not."""
    try:
        yield
    except OSError as error:
        if not error.filename:
            error.filename = str(target)
        raise


def stream_from_node(
    driver, *, argv: list[str], target: Path, paths: tuple[str, ...] = (), on_progress: Progress | None = None
) -> FileEntry:
    """Run `argv` on the node and store its stdout as `target`, returning the file's sha256 and size."""
    digest, size = hashlib.sha256(), 0
    with naming(target), open_private(target) as out:
        try:
            with driver.open_stream_out(argv) as stream:
                for chunk in stream:
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                    if on_progress is not None:
                        on_progress(target.name, size)
        except CCPError as error:
            raise CCPError(f"{target.name} failed after {size} bytes were streamed: {error.message}") from error
        out.flush()
        os.fsync(out.fileno())
    return FileEntry(target.name, digest.hexdigest(), size, paths)


def write_local(target: Path, data: bytes) -> FileEntry:
    with naming(target), open_private(target) as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    return FileEntry(target.name, hashlib.sha256(data).hexdigest(), len(data))


def hash_local(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while chunk := f.read(READ_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# What member_hashes gives a symlink: not compared (Driver.checksums follows a top-level link given
# to it, and skips links below), only known to be there.
SYMLINK = "symlink"


def member_hashes(archive: Path) -> dict[str, str]:
    """sha256 of every regular file in a local .tar.gz, keyed by its normalised path (as
    `Driver.checksums` keys them); SYMLINK for symlinks. Directories are left out."""
    hashes: dict[str, str] = {}
    with tarfile.open(archive, "r|gz") as tar:
        for member in tar:
            if member.issym():
                hashes[posixpath.normpath(member.name)] = SYMLINK
                continue
            if member.islnk():  # a hard link: the same content as the file it links to (stored earlier)
                target = hashes.get(posixpath.normpath(member.linkname))
                if target is not None:
                    hashes[posixpath.normpath(member.name)] = target
                continue
            if not member.isreg():
                continue
            digest = hashlib.sha256()
            source = tar.extractfile(member)
            while chunk := source.read(READ_CHUNK):
                digest.update(chunk)
            hashes[posixpath.normpath(member.name)] = digest.hexdigest()
    return hashes


def stream_to_node(driver, *, source: Path, argv: list[str], on_progress: Progress | None = None) -> str:
    """Feed a local file to `argv`'s stdin on the node; returns the sha256 of what was sent."""
    digest, sent = hashlib.sha256(), 0
    with open(source, "rb") as f, driver.open_stream_in(argv) as stdin:
        while chunk := f.read(READ_CHUNK):
            digest.update(chunk)
            stdin.write(chunk)
            sent += len(chunk)
            if on_progress is not None:
                on_progress(source.name, sent)
    return digest.hexdigest()
