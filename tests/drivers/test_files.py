"""Files: atomic replacement, modes, reads of missing files."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from instances.drivers import Driver, PathNotFound

pytestmark = pytest.mark.testbed


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_write_then_read(driver: Driver, node_workdir: Path) -> None:
    path = str(node_workdir / "a file.txt")

    driver.write_file(path, b"hello\n")

    assert driver.read_file(path) == b"hello\n"
    assert driver.exists(path)
    assert mode_of(Path(path)) == 0o644


@pytest.mark.parametrize("size", [0, 1, 5 * 1024 * 1024 + 7])
def test_binary_files_of_any_size_round_trip(driver: Driver, node_workdir: Path, size: int) -> None:
    data = os.urandom(size)
    path = str(node_workdir / "blob")

    driver.write_file(path, data)

    assert driver.read_file(path) == data == Path(path).read_bytes()


def test_new_file_with_a_mode(driver: Driver, node_workdir: Path) -> None:
    path = node_workdir / ".env"

    driver.write_file(str(path), b"SECRET=1\n", mode=0o600)

    assert mode_of(path) == 0o600


def test_existing_mode_is_kept(driver: Driver, node_workdir: Path) -> None:
    path = node_workdir / "run.sh"
    driver.write_file(str(path), b"#!/bin/sh\n", mode=0o750)

    driver.write_file(str(path), b"#!/bin/sh\necho new\n")

    assert mode_of(path) == 0o750
    assert path.read_bytes() == b"#!/bin/sh\necho new\n"


def test_missing_file(driver: Driver, node_workdir: Path) -> None:
    path = str(node_workdir / "nope")

    assert not driver.exists(path)
    with pytest.raises(PathNotFound) as caught:
        driver.read_file(path)
    assert isinstance(caught.value, FileNotFoundError)
    assert f"{path} does not exist on node {driver.label}" in caught.value.message


def test_readers_never_see_a_partial_file_during_200_rewrites(driver: Driver, node_workdir: Path) -> None:
    path = node_workdir / "compose.yml"
    size = 256 * 1024  # many write requests per version: a non-atomic write would be seen half-done
    versions = {bytes([n % 251]) * size for n in range(200)}
    driver.write_file(str(path), b"\xff" * size)
    versions.add(b"\xff" * size)
    seen: set[bytes] = set()
    torn: list[int] = []
    done = threading.Event()

    def read_continuously() -> None:
        while not done.is_set():
            data = path.read_bytes()
            if data in versions:
                seen.add(data[:1])
            else:
                torn.append(len(data))

    reader = threading.Thread(target=read_continuously)
    reader.start()
    try:
        for n in range(200):
            driver.write_file(str(path), bytes([n % 251]) * size)
    finally:
        done.set()
        reader.join()

    assert torn == []
    assert len(seen) > 20  # the reader really ran alongside the writes
    assert sorted(os.listdir(node_workdir)) == ["compose.yml"]  # no temp files left behind


def test_write_into_a_missing_directory_fails_readably(driver: Driver, node_workdir: Path) -> None:
    with pytest.raises(Exception) as caught:
        driver.write_file(str(node_workdir / "missing" / "f"), b"x")

    assert str(node_workdir / "missing") in str(caught.value)


def test_a_symlinked_file_stays_a_link_and_its_target_is_written(driver: Driver, node_workdir: Path) -> None:
    shared = node_workdir / "shared"
    shared.mkdir()
    target = shared / "tenant.env"
    target.write_bytes(b"A=1\n")
    target.chmod(0o640)
    link = node_workdir / ".env"
    link.symlink_to("shared/tenant.env")  # relative, as install scripts make them
    chained = node_workdir / "env.link"
    chained.symlink_to(link)  # a link to a link
    owner = node_workdir.stat()
    for made in (shared, target):
        os.chown(made, owner.st_uid, owner.st_gid)

    driver.write_file(str(chained), b"A=2\n")

    assert link.is_symlink() and os.readlink(link) == "shared/tenant.env" and chained.is_symlink()
    assert target.read_bytes() == b"A=2\n" and mode_of(target) == 0o640
    assert not [p.name for p in node_workdir.iterdir() if p.name.endswith(".ccp-tmp")]
    assert sorted(p.name for p in shared.iterdir()) == ["tenant.env"]
