"""Where backup files are kept: a local folder (BACKUP_ROOT) or an S3-compatible bucket (CCP_BACKUP_STORAGE).

Both keep a backup under the same `location` (`<node>/<instance>/<folder>`) and honour the same rule:
a backup is listed as complete only once every file is written.

- Local: files go into `<folder>.partial`, which is renamed to `<folder>` after MANIFEST.txt is written.
- S3: files are uploaded under `<prefix>/<location>/` (each a multipart upload, parts sent as they are
  read from the node), and MANIFEST.txt is uploaded last: a prefix without MANIFEST.txt is not a
  backup. Removing one deletes MANIFEST.txt first, so a half-deleted backup never looks complete.

Nothing is staged: the local backend writes straight into the folder, the S3 backend holds at most
PARTS_IN_MEMORY parts of PART_SIZE in memory per backup.
"""

from __future__ import annotations

import io
import os
import queue
import shutil
import threading
from collections.abc import Iterable
from contextlib import suppress
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Protocol

from django.conf import settings

from ccp.errors import CCPError

from . import layout

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700
# S3 multipart: every part but the last must be at least 5 MiB, and an upload has at most 10,000 parts,
# so one archive can be up to 80 GB. Memory: the part being filled and the one being sent, for all the
# files of a backup together (the node's SSH channel buffers up to its 16 MiB window meanwhile, so a slow
# bucket slows the node, nothing more).
PART_SIZE = 8 * 1024 * 1024
PARTS_IN_MEMORY = 2
READ_CHUNK = 1024 * 1024


class StorageError(CCPError):
    pass


class MissingFile(StorageError):
    pass


class Sink(Protocol):
    def write(self, data: bytes | memoryview) -> int: ...


class BackupWriter(Protocol):
    """The files of one backup being written. `file(name)` is a context manager yielding a sink;
    `commit(manifest)` writes MANIFEST.txt last and makes the backup complete; `discard()` removes
    everything written so far."""

    def file(self, name: str): ...
    def commit(self, manifest: bytes) -> None: ...
    def discard(self) -> None: ...


# --- local folder --------------------------------------------------------------------------------


def make_private_dirs(path: Path, *, below: Path) -> None:
    """Create `path` and any missing folder between `below` and it, each 0700 (`below` itself included).
    Existing folders are tightened too: a BACKUP_ROOT made by an older version was 0755."""
    below.mkdir(parents=True, exist_ok=True)
    parts = path.relative_to(below).parts
    for folder in [below, *[below / Path(*parts[:n]) for n in range(1, len(parts) + 1)]]:
        folder.mkdir(exist_ok=True)
        os.chmod(folder, PRIVATE_DIR_MODE)


def open_private(target: Path):
    """A new file (never an existing one), 0600 whatever the umask."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    os.fchmod(fd, PRIVATE_FILE_MODE)
    return os.fdopen(fd, "wb")


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _LocalFile:
    def __init__(self, target: Path):
        self.target = target

    def __enter__(self):
        self.handle = open_private(self.target)
        return self.handle

    def __exit__(self, kind, error, tb):
        try:
            try:
                if kind is None:
                    self.handle.flush()
                    os.fsync(self.handle.fileno())
            finally:
                self.handle.close()
        except OSError as failure:
            _name_file(failure, self.target)
            raise
        if isinstance(error, OSError):
            _name_file(error, self.target)  # a full disk: a plain file write does not say which file
        return False


def _name_file(error: OSError, target: Path) -> None:
    if not error.filename:
        error.filename = str(target)


class _LocalWriter:
    def __init__(self, final: Path, root: Path):
        self.final, self.partial = final, layout.partial_of(final)
        make_private_dirs(self.partial, below=root)

    def file(self, name: str):
        return _LocalFile(self.partial / name)

    def commit(self, manifest: bytes) -> None:
        with _LocalFile(self.partial / layout.MANIFEST) as out:
            out.write(manifest)
        fsync_dir(self.partial)
        self.partial.rename(self.final)
        fsync_dir(self.final.parent)

    def discard(self) -> None:
        shutil.rmtree(self.partial, ignore_errors=True)


class LocalStorage:
    def __init__(self, root: Path):
        self.root = Path(root)

    def __str__(self) -> str:
        return f"the local folder {self.root}"

    def folder(self, location: str) -> Path:
        path = (self.root / location).resolve()
        if not location or self.root.resolve() not in path.parents:
            raise StorageError(f"{location!r} is not a backup folder under {self.root}.")
        return path

    def reserve(self, base: str) -> str:
        candidate, n = base, 1
        while (self.root / candidate).exists() or layout.partial_of(self.root / candidate).exists():
            n += 1
            candidate = f"{base}-{n}"
        return candidate

    def writer(self, location: str) -> BackupWriter:
        return _LocalWriter(self.folder(location), self.root)

    def is_complete(self, location: str) -> bool:
        try:
            return (self.folder(location) / layout.MANIFEST).is_file()
        except StorageError:
            return False

    def open(self, location: str, name: str) -> BinaryIO:
        try:
            return open(self.folder(location) / name, "rb")  # noqa: SIM115 - the caller closes it
        except FileNotFoundError:
            raise MissingFile(f"{name} is missing") from None

    def remove(self, location: str) -> None:
        try:
            folder = self.folder(location)
        except StorageError:
            return
        if not folder.exists():
            return
        # Renamed first: a half-deleted folder must never look like a complete backup.
        doomed = folder.with_name(folder.name + layout.PRUNING_SUFFIX)
        folder.rename(doomed)
        shutil.rmtree(doomed, ignore_errors=True)

    def discard(self, location: str) -> None:
        with suppress(StorageError):
            shutil.rmtree(layout.partial_of(self.folder(location)), ignore_errors=True)

    def sweep(self, instance_folder: str, *, running: Iterable[str]) -> list[str]:
        """Remove the .partial/.pruning folders under `instance_folder` no running backup owns."""
        root = self.root / instance_folder
        if not root.is_dir():
            return []
        owned = {layout.partial_of(self.root / location).name for location in running}
        removed = []
        for entry in sorted(root.iterdir()):
            if entry.name.endswith((layout.PARTIAL_SUFFIX, layout.PRUNING_SUFFIX)) and entry.name not in owned:
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(f"removed leftover folder {entry.relative_to(self.root).as_posix()}")
        return removed


# --- S3-compatible bucket ------------------------------------------------------------------------


class _Buffers:
    """Part buffers reused across uploads: allocating and freeing an 8 MiB block per part lets glibc's
    allocator raise its mmap threshold and keep freed blocks in the heap, and the worker's memory creeps
    up with the archive size; reused buffers keep it flat."""

    KEEP = 8

    def __init__(self):
        self._free: list[bytearray] = []
        self._lock = threading.Lock()

    def take(self) -> bytearray:
        with self._lock:
            return self._free.pop() if self._free else bytearray(PART_SIZE)

    def give(self, buffer: bytearray) -> None:
        with self._lock:
            if len(self._free) < self.KEEP:
                self._free.append(buffer)


_buffers = _Buffers()


class _PartBody(io.RawIOBase):
    """A part's bytes as the file object botocore reads (and rewinds on a retry), without a copy."""

    def __init__(self, buffer: bytearray, length: int):
        super().__init__()
        self.view, self.position = memoryview(buffer)[:length], 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, target) -> int:
        n = min(len(target), len(self.view) - self.position)
        target[:n] = self.view[self.position : self.position + n]
        self.position += n
        return n

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: len(self.view)}[whence]
        self.position = max(0, min(len(self.view), base + offset))
        return self.position

    def tell(self) -> int:
        return self.position

    def __len__(self) -> int:
        return len(self.view)

    def close(self) -> None:
        # botocore closes a body once sent; it is read again on a retry, so closing must not end it.
        pass


_COMPLETE = object()  # queued after the last part: complete the upload
_ABORT = object()  # queued when the file failed: abort it


class _S3Upload:
    """One object uploaded as it is written: full PART_SIZE parts go to S3 from a thread while the next
    one fills. A file smaller than one part is a single PUT when it is closed. A bigger one is finished
    by its thread (last part, then CompleteMultipartUpload) while the backup goes on with its next file:
    `wait()` says whether it succeeded. `slots` bounds the buffers of all the files of one backup."""

    def __init__(self, client, bucket: str, key: str, slots: threading.Semaphore):
        self.client, self.bucket, self.key, self.slots = client, bucket, key, slots
        self.buffer: bytearray | None = None
        self.filled = 0
        self.upload_id: str | None = None
        self.parts: list[dict] = []
        self.queue: queue.Queue = queue.Queue()
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.cancelled = False

    def __enter__(self):
        return self

    def write(self, data: bytes | memoryview) -> int:
        if self.error is not None:
            raise _s3_error(self.error, f"uploading {self.key}")
        view = memoryview(data).cast("B")
        while view:
            if self.buffer is None:
                self.slots.acquire()  # waits while the backup's other buffers are still being sent
                self.buffer, self.filled = _buffers.take(), 0
            n = min(PART_SIZE - self.filled, len(view))
            self.buffer[self.filled : self.filled + n] = view[:n]
            self.filled += n
            view = view[n:]
            if self.filled == PART_SIZE:
                self._send()
        return len(data)

    def _send(self) -> None:
        """Hand the buffer to the upload thread (which gives it back and frees its slot)."""
        if self.upload_id is None:
            self.upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=self.key)["UploadId"]
            self.thread = threading.Thread(target=self._upload_parts, name=f"s3-upload {self.key}", daemon=True)
            self.thread.start()
        self.queue.put((self.buffer, self.filled))
        self.buffer, self.filled = None, 0

    def _upload_parts(self) -> None:
        number = 0
        while True:
            item = self.queue.get()
            if item is _COMPLETE or item is _ABORT:
                break
            buffer, length = item
            number += 1
            try:
                if self.error is None:  # after an error: drain, the writer sees it on its next write
                    self._upload_part(number, buffer, length)
            except BaseException as error:  # noqa: BLE001 - handed to the writing thread
                self.error = error
            finally:
                _buffers.give(buffer)
                self.slots.release()
        if item is _COMPLETE and self.error is None and not self.cancelled:
            try:
                self.client.complete_multipart_upload(
                    Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, MultipartUpload={"Parts": self.parts}
                )
                return
            except BaseException as error:  # noqa: BLE001 - reported by wait()
                self.error = error
        self._abort()

    def _upload_part(self, number: int, buffer: bytearray, length: int) -> None:
        done = self.client.upload_part(
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self.upload_id,
            PartNumber=number,
            # A full buffer goes as it is: botocore hashes it in one call and http.client sends it in one
            # sendall (a file object would be read 8 KiB at a time in Python). The last part is a view.
            Body=buffer if length == len(buffer) else _PartBody(buffer, length),
            ContentLength=length,
        )
        self.parts.append({"PartNumber": number, "ETag": done["ETag"]})

    def __exit__(self, kind, error, tb):
        if self.thread is None:
            try:
                if kind is None:
                    self._put_whole()
            finally:
                self._give_back()
            return
        if kind is None and self.error is None:
            if self.filled:
                self._send()  # the last part; the thread then completes the upload
            self.queue.put(_COMPLETE)
            return
        self._give_back()
        self.queue.put(_ABORT)
        self.thread.join()
        if kind is None:
            raise _s3_error(self.error, f"uploading {self.key}")

    def _put_whole(self) -> None:
        body = bytes(memoryview(self.buffer)[: self.filled]) if self.buffer is not None else b""
        try:
            self.client.put_object(Bucket=self.bucket, Key=self.key, Body=body)
        except Exception as failure:
            raise _s3_error(failure, f"uploading {self.key}") from failure

    def _give_back(self) -> None:
        if self.buffer is not None:
            _buffers.give(self.buffer)
            self.buffer = None
            self.slots.release()

    def wait(self) -> None:
        """Wait until the object is complete; a StorageError when it is not."""
        if self.thread is not None:
            self.thread.join()
        if self.error is not None:
            raise _s3_error(self.error, f"uploading {self.key}")

    def cancel(self) -> None:
        """Abort the upload unless it is complete already, and wait for its thread."""
        self.cancelled = True
        if self.thread is not None:
            self.thread.join()

    def _abort(self) -> None:
        if self.upload_id is not None:
            with suppress(Exception):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id)


class _S3Writer:
    def __init__(self, storage: S3Storage, location: str):
        self.storage, self.location = storage, location
        self.slots = threading.BoundedSemaphore(PARTS_IN_MEMORY)
        self.uploads: list[_S3Upload] = []

    def file(self, name: str):
        upload = _S3Upload(self.storage.client, self.storage.bucket, self.storage.key(self.location, name), self.slots)
        self.uploads.append(upload)
        return upload

    def commit(self, manifest: bytes) -> None:
        for upload in self.uploads:
            upload.wait()  # MANIFEST.txt only once every file is complete
        with self.file(layout.MANIFEST) as out:
            out.write(manifest)

    def discard(self) -> None:
        for upload in self.uploads:
            upload.cancel()
        self.storage.discard(self.location)


class _S3Body:
    """A readable over an object's body that turns transport errors into sentences."""

    def __init__(self, body, what: str):
        self.body, self.what = body, what

    def read(self, size: int = -1) -> bytes:
        try:
            return self.body.read(size if size is not None and size >= 0 else None)
        except Exception as error:
            raise _s3_error(error, self.what) from error

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self.body.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class S3Storage:
    def __init__(self, url: str, *, endpoint_url: str = "", region: str = ""):
        without = url.removeprefix("s3://")
        bucket, _, prefix = without.partition("/")
        if not bucket:
            raise StorageError(f"CCP_BACKUP_STORAGE={url!r} names no bucket; write s3://bucket/prefix.")
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.endpoint_url, self.region = endpoint_url or None, region or None
        self.client = _client(self.endpoint_url, self.region)

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" + (f" at {self.endpoint_url}" if self.endpoint_url else "")

    def key(self, location: str, name: str = "") -> str:
        path = PurePosixPath(location)
        if not location or path.is_absolute() or ".." in path.parts:
            raise StorageError(f"{location!r} is not a backup location.")
        return "/".join(part for part in (self.prefix, location, name) if part)

    def _folder_prefix(self, location: str) -> str:
        return self.key(location) + "/"

    def _keys(self, prefix: str) -> list[str]:
        keys = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                keys += [item["Key"] for item in page.get("Contents", [])]
        except Exception as error:
            raise _s3_error(error, f"listing {prefix}") from error
        return keys

    def reserve(self, base: str) -> str:
        candidate, n = base, 1
        while self._keys(self._folder_prefix(candidate)):
            n += 1
            candidate = f"{base}-{n}"
        return candidate

    def writer(self, location: str) -> BackupWriter:
        self.key(location)
        return _S3Writer(self, location)

    def is_complete(self, location: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self.key(location, layout.MANIFEST))
        except Exception:  # noqa: BLE001 - absent, or unreachable: not known to be complete either way
            return False
        return True

    def open(self, location: str, name: str) -> BinaryIO:
        key = self.key(location, name)
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        except self.client.exceptions.NoSuchKey:
            raise MissingFile(f"{name} is missing") from None
        except Exception as error:
            raise _s3_error(error, f"reading {key}") from error
        return _S3Body(body, f"reading {key}")  # type: ignore[return-value]

    def remove(self, location: str) -> None:
        # MANIFEST.txt first: from then on the prefix is no longer a complete backup.
        with suppress(StorageError):
            manifest = self.key(location, layout.MANIFEST)
            self.client.delete_object(Bucket=self.bucket, Key=manifest)
            self.discard(location)

    def discard(self, location: str) -> None:
        prefix = self._folder_prefix(location)
        self._abort_uploads(prefix)
        self._delete(self._keys(prefix))

    def _delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):
            batch = [{"Key": key} for key in keys[start : start + 1000]]
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})

    def _uploads(self, prefix: str) -> list[tuple[str, str]]:
        found = []
        for page in self.client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=prefix):
            found += [(item["Key"], item["UploadId"]) for item in page.get("Uploads", [])]
        return found

    def _abort_uploads(self, prefix: str) -> int:
        uploads = self._uploads(prefix)
        for key, upload_id in uploads:
            with suppress(Exception):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        return len(uploads)

    def sweep(self, instance_folder: str, *, running: Iterable[str]) -> list[str]:
        """Remove what incomplete backups left under `instance_folder`: folders without MANIFEST.txt and
        unfinished multipart uploads, unless a running backup owns them."""
        root = self._folder_prefix(instance_folder)
        owned = {self._folder_prefix(location) for location in running}
        folders: dict[str, list[str]] = {}
        for key in self._keys(root):
            folder = key[: key.index("/", len(root)) + 1] if "/" in key[len(root) :] else None
            if folder is not None:
                folders.setdefault(folder, []).append(key)
        removed = []
        for folder, keys in sorted(folders.items()):
            if folder in owned or folder + layout.MANIFEST in keys:
                continue
            self._delete(keys)
            removed.append(f"removed the leftover files of an incomplete backup under {folder}")
        for key, upload_id in self._uploads(root):
            if any(key.startswith(prefix) for prefix in owned):
                continue
            with suppress(Exception):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            removed.append(f"aborted the unfinished upload of {key}")
        return removed


_clients: dict[tuple, object] = {}
_clients_lock = threading.Lock()


def _client(endpoint_url: str | None, region: str | None):
    """One boto3 client per endpoint and region (clients are thread-safe). Credentials come from the
    environment, as boto3 reads them (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, or an instance role)."""
    import boto3  # noqa: PLC0415 - boto3 costs ~100 ms to import: only processes that use S3 pay it
    from botocore.config import Config  # noqa: PLC0415

    with _clients_lock:
        found = _clients.get((endpoint_url, region))
        if found is None:
            config = Config(
                retries={"max_attempts": 5, "mode": "standard"},
                connect_timeout=10,
                read_timeout=120,
                # MANIFEST.txt holds each file's sha256, checked by verify: no second checksum per request.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            )
            found = boto3.session.Session().client("s3", endpoint_url=endpoint_url, region_name=region, config=config)
            _clients[(endpoint_url, region)] = found
        return found


def _s3_error(error: BaseException, what: str) -> StorageError:
    if isinstance(error, CCPError):
        return StorageError(error.message)
    code = getattr(error, "response", {}).get("Error", {}).get("Code", "") if hasattr(error, "response") else ""
    detail = f"{code}: {error}" if code else str(error)
    return StorageError(f"The backup storage failed while {what} ({detail[:300]}).")


# --- the configured storage ----------------------------------------------------------------------


def backup_storage() -> LocalStorage | S3Storage:
    """The storage CCP_BACKUP_STORAGE names: `s3://bucket/prefix`, or a local folder (BACKUP_ROOT when empty)."""
    url = settings.CCP_BACKUP_STORAGE or str(settings.BACKUP_ROOT)
    if url.startswith("s3://"):
        return S3Storage(url, endpoint_url=settings.CCP_S3_ENDPOINT_URL, region=settings.CCP_S3_REGION)
    return LocalStorage(Path(url))
