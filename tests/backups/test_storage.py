"""The S3 backend's streaming upload against a real moto_server: parts are cut at PART_SIZE whatever the
write sizes, the bytes that arrive are the bytes written, and a file that fails half-way leaves no object
and no unfinished upload."""

from __future__ import annotations

import hashlib
import os

import pytest

from instances.backups import layout
from instances.backups.storage import PART_SIZE, MissingFile, StorageError, backup_storage

pytestmark = pytest.mark.slow  # tens of MB through moto_server


def written(storage, location: str, name: str, sizes: list[int]) -> bytes:
    data = os.urandom(sum(sizes))
    with storage.writer(location).file(name) as out:
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
    data = written(storage, "n/i/f", "a.bin", sizes)
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
    written(storage, "n/i/h", "c.bin", [100])
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
