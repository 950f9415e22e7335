"""`checksums`: computed on the node, equal to `sha256sum`, for awkward names."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from instances.drivers import Driver

pytestmark = pytest.mark.testbed

FILES = {
    "mkdocs/docs/index.md": b"# Home\n",
    "mkdocs/docs/with space.md": b"spaces\n",
    "mkdocs/docs/ünïcödé ✓.md": b"unicode\n",
    "mkdocs/docs/-leading dash.md": b"dash\n",
    "mkdocs/docs/new\nline.md": b"newline in the name\n",
    "mkdocs/docs/back\\slash.md": b"backslash\n",
    "mkdocs/empty.txt": b"",
    "mkdocs/deep/a/b/c/d.txt": os.urandom(100_000),
    "other/not-protected.txt": b"elsewhere\n",
}


@pytest.fixture
def tree(node_workdir: Path) -> Path:
    for name, data in FILES.items():
        path = node_workdir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (node_workdir / "mkdocs" / "link-to-index").symlink_to("docs/index.md")  # links inside are not files
    return node_workdir


def sha256sum(path: Path) -> str:
    # On stdin: with a name, sha256sum marks odd names (newline, backslash) by escaping its output.
    with path.open("rb") as f:
        return subprocess.run(["sha256sum"], stdin=f, capture_output=True, check=True).stdout.split()[0].decode()


def test_relative_to_base_equal_sha256sum(driver: Driver, tree: Path) -> None:
    sums = driver.checksums(["mkdocs"], base=str(tree))

    expected = {name: sha256sum(tree / name) for name in FILES if name.startswith("mkdocs/")}
    assert sums == expected
    assert sums["mkdocs/deep/a/b/c/d.txt"] == hashlib.sha256(FILES["mkdocs/deep/a/b/c/d.txt"]).hexdigest()


def test_absolute_paths_and_missing_ones(driver: Driver, tree: Path) -> None:
    sums = driver.checksums([str(tree / "other"), str(tree / "not-there")])

    assert sums == {str(tree / "other/not-protected.txt"): sha256sum(tree / "other/not-protected.txt")}


def test_absolute_paths_under_base_become_relative(driver: Driver, tree: Path) -> None:
    sums = driver.checksums([str(tree / "other"), "mkdocs/empty.txt"], base=str(tree))

    assert set(sums) == {"other/not-protected.txt", "mkdocs/empty.txt"}


def test_a_change_shows(driver: Driver, tree: Path) -> None:
    before = driver.checksums(["mkdocs"], base=str(tree))
    (tree / "mkdocs/docs/with space.md").write_bytes(b"edited\n")

    after = driver.checksums(["mkdocs"], base=str(tree))

    assert {k for k in before if before[k] != after.get(k)} == {"mkdocs/docs/with space.md"}


def test_nothing_to_hash(driver: Driver, tree: Path) -> None:
    assert driver.checksums([], base=str(tree)) == {}
    assert driver.checksums(["absent"], base=str(tree)) == {}
