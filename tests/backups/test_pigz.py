"""Backups compress with pigz when the node has it, else with tar's gzip: the same .tar.gz either way."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from instances.backups.archive import member_hashes
from instances.commands.tar import create_gz_argv

pytestmark = pytest.mark.skipif(
    shutil.which("pigz") is None and os.environ.get("CI") != "true",
    reason="pigz is not installed (tests/testbed/install.sh installs it)",
)


def archive_with_path(tree: Path, out: Path, path_dirs: list[Path]) -> Path:
    argv = create_gz_argv(str(tree), ("mkdocs",))
    with open(out, "wb") as f:
        subprocess.run(argv, stdout=f, check=True, env={"PATH": os.pathsep.join(map(str, path_dirs))})
    return out


def bin_dir(tmp_path: Path, name: str, tools: dict[str, str]) -> Path:
    """A PATH directory holding only the named tools (real binaries, or a script around one)."""
    directory = tmp_path / name
    directory.mkdir()
    for tool, target in tools.items():
        (directory / tool).symlink_to(target)
    return directory


def test_pigz_and_gzip_make_the_same_archive_contents(tmp_path):
    tree = tmp_path / "tenant"
    (tree / "mkdocs" / "docs").mkdir(parents=True)
    (tree / "mkdocs" / "docs" / "a b.md").write_bytes(os.urandom(300_000))
    (tree / "mkdocs" / "index.md").write_text("# hi\n")
    log = tmp_path / "pigz-called"
    wrapper = tmp_path / "pigz-wrapper"
    wrapper.write_text(f'#!/bin/sh\necho "$@" >>{log}\nexec {shutil.which("pigz")} "$@"\n')
    wrapper.chmod(0o755)
    common = {"sh": shutil.which("sh"), "tar": shutil.which("tar")}
    with_pigz = bin_dir(tmp_path, "with", {**common, "pigz": str(wrapper)})
    without = bin_dir(tmp_path, "without", {**common, "gzip": shutil.which("gzip")})

    parallel = archive_with_path(tree, tmp_path / "p.tar.gz", [with_pigz])
    assert log.exists()  # tar ran pigz
    plain = archive_with_path(tree, tmp_path / "g.tar.gz", [without])

    assert parallel.read_bytes()[:2] == plain.read_bytes()[:2] == b"\x1f\x8b"
    assert member_hashes(parallel) == member_hashes(plain) and "mkdocs/docs/a b.md" in member_hashes(plain)
