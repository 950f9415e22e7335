"""The S3 backend's streaming upload against a real moto_server: parts are cut at PART_SIZE whatever the
write sizes, the bytes that arrive are the bytes written, a file that fails half-way leaves no object
and no unfinished upload, and MANIFEST.txt is written only once every file's upload is complete."""

from __future__ import annotations

import hashlib
import os
import time

import pytest

from instances.backups import layout
from instances.backups.storage import PART_SIZE, MissingFile, StorageError, backup_storage

pytestmark = pytest.mark.slow  # tens of MB through moto_server


def written(writer, name: str, sizes: list[int]) -> bytes:
    data = os.urandom(sum(sizes))
    with writer.file(name) as out:
        offset = 0
        for size in sizes:
            out.write(data[offset : offset + size])
            offset += size
    return data


@pytest.mark.parametrize(
    "sizes",
    [[], [10], [PART_SIZE], [PART_SIZE - 1, 2], [3 * PART_SIZE + 5], [1 << 20] * 17],
    ids=["empty", "small", "one-part", "just-over", "big-write", "many-writes"],
)
def test_what_is_read_back_is_what_was_written(s3_storage, sizes):
    storage = backup_storage()
    writer = storage.writer("n/i/f")
    data = written(writer, "a.bin", sizes)
    writer.commit(b"manifest")  # waits for every file: a big one is completed in the background
    with storage.open("n/i/f", "a.bin") as source:
        back = source.read()
    assert hashlib.sha256(back).hexdigest() == hashlib.sha256(data).hexdigest() and len(back) == len(data)
    assert s3_storage.uploads(s3_storage.bucket) == []


def test_a_file_that_fails_half_way_leaves_nothing(s3_storage):
    storage = backup_storage()
    with pytest.raises(RuntimeError), storage.writer("n/i/g").file("b.bin") as out:
        out.write(os.urandom(2 * PART_SIZE + 1))
        raise RuntimeError("the node went away")
    assert s3_storage.keys(s3_storage.bucket) == [] and s3_storage.uploads(s3_storage.bucket) == []
    with pytest.raises(MissingFile):
        storage.open("n/i/g", "b.bin")


def test_complete_means_manifest_and_remove_takes_it_first(s3_storage):
    storage = backup_storage()
    writer = storage.writer("n/i/h")
    written(writer, "c.bin", [100])
    assert not storage.is_complete("n/i/h")
    writer.commit(b"manifest")
    assert storage.is_complete("n/i/h") and storage.reserve("n/i/h") == "n/i/h-2"
    storage.remove("n/i/h")
    assert not storage.is_complete("n/i/h") and s3_storage.keys(s3_storage.bucket) == []


def test_locations_cannot_leave_the_prefix(s3_storage):
    storage = backup_storage()
    for bad in ("", "/etc", "n/../../x"):
        with pytest.raises(StorageError):
            storage.key(bad, layout.MANIFEST)


def test_a_background_completion_that_fails_fails_the_commit(s3_storage):
    """A big file is completed while the backup goes on; if that fails (here: its upload aborted behind
    the writer's back once its first part arrived), commit names the file and writes no MANIFEST.txt,
    and discard leaves nothing."""
    storage = backup_storage()
    client = s3_storage.client()
    writer = storage.writer("n/i/k")
    with writer.file("big.bin") as out:
        out.write(os.urandom(PART_SIZE))
        deadline = time.monotonic() + 30
        while not (uploads := client.list_multipart_uploads(Bucket=s3_storage.bucket).get("Uploads")) or not (
            client.list_parts(Bucket=s3_storage.bucket, Key=uploads[0]["Key"], UploadId=uploads[0]["UploadId"]).get(
                "Parts"
            )
        ):
            assert time.monotonic() < deadline, "the first part never arrived"
            time.sleep(0.05)
        client.abort_multipart_upload(Bucket=s3_storage.bucket, Key=uploads[0]["Key"], UploadId=uploads[0]["UploadId"])
        out.write(b"the last part")
    with pytest.raises(StorageError, match="big.bin"):
        writer.commit(b"manifest")
    assert not storage.is_complete("n/i/k")
    writer.discard()
    assert s3_storage.keys(s3_storage.bucket) == [] and s3_storage.uploads(s3_storage.bucket) == []


def test_a_backups_files_share_their_part_buffers(s3_storage):
    """The next file starts while the previous one is still being completed, within the same buffers."""
    storage = backup_storage()
    writer = storage.writer("n/i/m")
    datas = [written(writer, f"{n}.bin", [2 * PART_SIZE + 1]) for n in range(3)]
    assert writer.slots._value <= 2  # noqa: SLF001 - the semaphore's count: never more than 2 buffers out
    writer.commit(b"manifest")
    for n, data in enumerate(datas):
        with storage.open("n/i/m", f"{n}.bin") as source:
            assert hashlib.sha256(source.read()).digest() == hashlib.sha256(data).digest()
    assert s3_storage.uploads(s3_storage.bucket) == []
