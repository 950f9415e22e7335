"""`tar` command lines and the parser of a read (pure): many small files of a tenant's directory in
one stream (one `tar` on the node, not one SFTP read per file: a preview reads every managed file, and
at a 50 ms round trip that added up to seconds), a backup's archive, and a restore's unpacking."""

from __future__ import annotations

import io
import tarfile

from instances.drivers.errors import DriverError

MISSING = "No such file or directory"

# $1: the install directory; $2…: the entries to archive. The same .tar.gz either way: pigz (parallel
# gzip, every core of the node) when the node has it, else tar's own gzip. tar runs the compressor
# itself and fails when it fails, so no pipe hides an error.
TAR_GZ = r"""
dir=$1
shift
if command -v pigz >/dev/null 2>&1; then compress=--use-compress-program=pigz; else compress=--gzip; fi
exec tar -C "$dir" --numeric-owner "$compress" -cf - -- "$@"
"""


def read_files_argv(base: str, paths: list[str]) -> list[str]:
    """tar of exactly `paths` (relative to `base`): symlinks followed like a read would follow them,
    directories not descended into, missing files only warned about."""
    return ["tar", "-C", base, "--dereference", "--no-recursion", "--ignore-failed-read", "-cf", "-", "--", *paths]


def base_missing(stderr: bytes, base: str) -> bool:
    """The read failed because `base` itself does not exist (no install directory yet)."""
    output = stderr.decode(errors="replace")
    return f"{base}: Cannot open: {MISSING}" in output or f"{base}: Cannot chdir: {MISSING}" in output


def parse_files(archive: bytes, stderr: bytes, paths: list[str], *, node: str, base: str) -> dict[str, bytes | None]:
    """path → bytes, or None for a path the node does not have. Anything else tar could not read
    (permissions, a directory where a file should be) is an error, as a failed read would be."""
    problems = [
        line
        for line in stderr.decode(errors="replace").splitlines()
        if line.strip() and MISSING not in line and "Not a directory" not in line
    ]
    if problems:
        raise DriverError(f"Cannot read files under {base} on node {node}: {'; '.join(problems)[-400:]}", node=node)
    found: dict[str, bytes | None] = dict.fromkeys(paths)
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:") as tar:
        for member in tar:
            if member.name not in found:
                continue
            if not member.isreg():
                raise DriverError(f"Cannot read {base}/{member.name} on node {node}: it is not a file.", node=node)
            found[member.name] = tar.extractfile(member).read()
    return found


def create_gz_argv(install_dir: str, paths: tuple[str, ...]) -> list[str]:
    """A backup's .tar.gz of `paths` on stdout. Numeric owners: a restore on the node gives files back
    the ids they had, whatever the panel's users."""
    return ["sh", "-c", TAR_GZ, "ccp-tar", install_dir, *paths]


def extract_gz_argv(directory: str) -> list[str]:
    """Unpack a .tar.gz from stdin into `directory`, with numeric owners and modes kept."""
    return ["tar", "-C", directory, "--numeric-owner", "-p", "-xzf", "-"]
