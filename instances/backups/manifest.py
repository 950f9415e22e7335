"""MANIFEST.txt: what a backup is and the sha256 and size of each of its files. Pure: text in, text out.

    CCP backup manifest, format 1
    instance: tenant-a
    node: node-1
    label: scheduled
    install_dir: /srv/ccp/tenant-a
    started: 2025-03-01T02:30:00Z
    finished: 2025-03-01T02:30:41Z
    ccp_version: 0.1.0
    archive mkdocs.tar.gz: ["mkdocs"]
    archive config-files.tar.gz: [".env", "docker-compose.yml"]
    encrypted: ["config-files.tar.gz", "mkdocs.tar.gz"]      (only when CCP_BACKUP_AGE_RECIPIENTS is set)
    age_recipients: age1…

    <sha256>  <size in bytes>  <file name>
    …

The file lines are `sha256sum` lines of the stored files (an encrypted archive's line is that of
its age ciphertext) with the size in between; `awk 'NF==3 {print $1"  "$3}'
MANIFEST.txt | sha256sum -c` checks a backup without CCP.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

HEADER = "CCP backup manifest, format 1"
_FILE_LINE = re.compile(r"^([0-9a-f]{64})  ([0-9]+)  (\S.*)$")
_ARCHIVE_KEY = "archive "
ENCRYPTED_KEY = "encrypted"


@dataclass(frozen=True)
class FileEntry:
    name: str
    sha256: str
    size: int
    paths: tuple[str, ...] = ()  # for an archive: the install-directory paths it holds
    encrypted: bool = False  # stored encrypted with age (sha256 and size are those of the ciphertext)


@dataclass
class Manifest:
    meta: dict[str, str]
    files: list[FileEntry] = field(default_factory=list)

    def file(self, name: str) -> FileEntry | None:
        return next((entry for entry in self.files if entry.name == name), None)

    def as_json(self) -> dict:
        """The form stored on the Backup row: file → {sha256, size[, paths]}."""
        data: dict[str, dict] = {}
        for entry in self.files:
            data[entry.name] = {"sha256": entry.sha256, "size": entry.size}
            if entry.paths:
                data[entry.name]["paths"] = list(entry.paths)
            if entry.encrypted:
                data[entry.name]["encrypted"] = True
        return data

    @property
    def encrypted(self) -> list[str]:
        return sorted(entry.name for entry in self.files if entry.encrypted)


class ManifestError(ValueError):
    pass


def format_manifest(manifest: Manifest) -> str:
    lines = [HEADER]
    lines += [f"{key}: {value}" for key, value in manifest.meta.items()]
    lines += [f"{_ARCHIVE_KEY}{entry.name}: {json.dumps(list(entry.paths))}" for entry in manifest.files if entry.paths]
    if manifest.encrypted:
        lines.append(f"{ENCRYPTED_KEY}: {json.dumps(manifest.encrypted)}")
    lines.append("")
    lines += [f"{entry.sha256}  {entry.size}  {entry.name}" for entry in manifest.files]
    return "\n".join(lines) + "\n"


def parse_manifest(text: str) -> Manifest:
    lines = text.splitlines()
    if not lines or lines[0] != HEADER:
        raise ManifestError("MANIFEST.txt does not start with the CCP manifest header.")
    meta: dict[str, str] = {}
    encrypted: list[str] = []
    paths: dict[str, tuple[str, ...]] = {}
    files: list[tuple[str, str, int]] = []
    in_files = False
    for number, line in enumerate(lines[1:], start=2):
        if not line:
            in_files = True
            continue
        if in_files:
            match = _FILE_LINE.match(line)
            if not match:
                raise ManifestError(f"MANIFEST.txt line {number} is not a file line: {line[:80]!r}.")
            files.append((match.group(3), match.group(1), int(match.group(2))))
            continue
        key, sep, value = line.partition(": ")
        if not sep:
            raise ManifestError(f"MANIFEST.txt line {number} is not a `key: value` line: {line[:80]!r}.")
        if key.startswith(_ARCHIVE_KEY):
            try:
                paths[key.removeprefix(_ARCHIVE_KEY)] = tuple(json.loads(value))
            except ValueError:
                raise ManifestError(f"MANIFEST.txt line {number} has an unreadable path list.") from None
        elif key == ENCRYPTED_KEY:
            try:
                encrypted = list(json.loads(value))
            except ValueError:
                raise ManifestError(f"MANIFEST.txt line {number} has an unreadable list of encrypted files.") from None
        else:
            meta[key] = value
    entries = [FileEntry(name, sha, size, paths.get(name, ()), name in encrypted) for name, sha, size in files]
    return Manifest(meta=meta, files=entries)


def differences(on_disk: Manifest, recorded: dict) -> list[str]:
    """How MANIFEST.txt differs from what the Backup row recorded (names the files)."""
    problems = []
    listed = {entry.name: entry for entry in on_disk.files}
    for name, info in sorted(recorded.items()):
        entry = listed.get(name)
        if entry is None:
            problems.append(f"{name} is recorded for this backup but missing from MANIFEST.txt")
        elif entry.sha256 != info.get("sha256") or entry.size != info.get("size"):
            problems.append(f"MANIFEST.txt lists another checksum or size for {name} than was recorded")
        elif entry.encrypted != bool(info.get("encrypted")):
            problems.append(f"MANIFEST.txt and the record disagree on whether {name} is encrypted")
    problems += [
        f"MANIFEST.txt lists {name}, which was not recorded for this backup"
        for name in sorted(set(listed) - set(recorded))
    ]
    return problems
