"""Moving archives between a node and the backup storage, hashing in the same pass.

Nothing is staged on the node nor on the worker: `tar czf -` (compressing with pigz where the node has
it) writes to the SSH channel, and each chunk is encrypted (when recipients are set), fed to sha256 and
handed to the storage (a local file, or the current part of an S3 multipart upload) before the next
one is read.
"""

from __future__ import annotations

import hashlib
import posixpath
import tarfile
from collections.abc import Callable
from pathlib import Path

from ccp.errors import CCPError

from .encryption import encrypt_stream
from .manifest import FileEntry
from .storage import BackupWriter

# Reads from the storage (verify, restore) go in chunks of this size.
READ_CHUNK = 1024 * 1024

Progress = Callable[[str, int], None]  # (file name, bytes so far)


class HashingReader:
    """Reads from `source`, hashing what passes (the stored bytes, before any decryption)."""

    def __init__(self, source, on_progress: Progress | None = None, name: str = ""):
        self.source, self.on_progress, self.name = source, on_progress, name
        self.digest, self.size = hashlib.sha256(), 0

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        self.digest.update(data)
        self.size += len(data)
        if self.on_progress is not None and data:
            self.on_progress(self.name, self.size)
        return data

    def readable(self) -> bool:
        return True

    def drain(self) -> None:
        while self.read(READ_CHUNK):
            pass


class HashingSink:
    """Writes to `sink`, hashing what is stored."""

    def __init__(self, sink):
        self.sink, self.digest, self.size = sink, hashlib.sha256(), 0

    def write(self, data) -> int:
        self.sink.write(data)
        self.digest.update(data)
        self.size += len(data)
        return len(data)


def stream_from_node(
    driver,
    *,
    argv: list[str],
    writer: BackupWriter,
    name: str,
    paths: tuple[str, ...] = (),
    encrypt_to: list | None = None,
    on_progress: Progress | None = None,
) -> FileEntry:
    """Run `argv` on the node and store its stdout as `name` of the backup (encrypted to `encrypt_to`
    when given), returning the stored file's sha256 and size."""
    read = 0
    try:
        with writer.file(name) as out, driver.open_stream_out(argv) as stream:
            stored = HashingSink(out)
            source = HashingReader(stream, on_progress, name)
            if encrypt_to:
                encrypt_stream(source, stored, encrypt_to)
            else:
                while chunk := source.read(READ_CHUNK):
                    stored.write(chunk)
            read = source.size
    except CCPError as error:
        raise CCPError(f"{name} failed after {read or 'some'} bytes were streamed: {error.message}") from error
    return FileEntry(name, stored.digest.hexdigest(), stored.size, paths, encrypted=bool(encrypt_to))


def write_small(writer: BackupWriter, name: str, data: bytes) -> FileEntry:
    with writer.file(name) as out:
        out.write(data)
    return FileEntry(name, hashlib.sha256(data).hexdigest(), len(data))


def hash_stored(source) -> tuple[str, int]:
    reader = HashingReader(source)
    reader.drain()
    return reader.digest.hexdigest(), reader.size


# What member_hashes gives a symlink: not compared (Driver.checksums follows a top-level link given
# to it, and skips links below), only known to be there.
SYMLINK = "symlink"


def member_hashes(archive) -> dict[str, str]:
    """sha256 of every regular file in a .tar.gz (a path, or a readable of its plaintext), keyed by its
    normalised path (as `Driver.checksums` keys them); SYMLINK for symlinks. Directories are left out."""
    hashes: dict[str, str] = {}
    opened = tarfile.open(archive, "r|gz") if isinstance(archive, Path) else tarfile.open(fileobj=archive, mode="r|gz")
    with opened as tar:
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


def stream_to_node(driver, *, source, name: str, argv: list[str], on_progress: Progress | None = None) -> int:
    """Feed a readable (a stored archive, decrypted if need be) to `argv`'s stdin on the node; returns
    the bytes sent."""
    sent = 0
    with driver.open_stream_in(argv) as stdin:
        while chunk := source.read(READ_CHUNK):
            stdin.write(chunk)
            sent += len(chunk)
            if on_progress is not None:
                on_progress(name, sent)
    return sent
