"""Where backups live and what goes into them (README "Backups" documents the format).

    <storage>/<node>/<instance>/<UTC timestamp>-<label>/      (storage: BACKUP_ROOT, or s3://bucket/prefix)
        mkdocs.tar.gz             mkdocs/ of the install directory
        configs-and-nginx.tar.gz  configs/ and nginx/ (those that exist)
        config-files.tar.gz       .env, the compose file and the other top-level config files
        host-state.txt            compose ps, images with IDs, disk usage, kernel
        git-state.txt             HEAD, branch, status, stash list (git checkouts only)
        MANIFEST.txt              sha256 and size of each file above, and what the backup is

A backup's `location` is `<node>/<instance>/<folder>`, the same in every storage. In a local folder it
is written as `<folder>.partial` and renamed to `<folder>` once every file is written and hashed; in a
bucket MANIFEST.txt is uploaded last (storage.py). Either way a backup is complete only once its
MANIFEST.txt is there.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

MKDOCS = "mkdocs.tar.gz"
CONFIGS_AND_NGINX = "configs-and-nginx.tar.gz"
CONFIG_FILES = "config-files.tar.gz"
HOST_STATE = "host-state.txt"
GIT_STATE = "git-state.txt"
MANIFEST = "MANIFEST.txt"
# Archives a restore puts back, in this order.
RESTORABLE = (MKDOCS, CONFIGS_AND_NGINX, CONFIG_FILES)

PARTIAL_SUFFIX = ".partial"
PRUNING_SUFFIX = ".pruning"
TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"

# Top-level files of an install directory that config-files.tar.gz takes (shell patterns).
CONFIG_FILE_PATTERNS = (
    ".env",
    ".env.*",
    "*.env",
    "docker-compose*.yml",
    "docker-compose*.yaml",
    "compose*.yml",
    "compose*.yaml",
    "*.yml",
    "*.yaml",
    "*.conf",
    "*.cfg",
    "*.ini",
    "*.toml",
    "*.json",
)
# Never backed up: CCP's own scratch files on the node.
IGNORED_PATTERNS = (".ccp*", "*.ccp-tmp")


@dataclass(frozen=True)
class Inventory:
    """The top level of an install directory: entry name → type (`f` file, `d` directory, `l` symlink)."""

    entries: dict[str, str]

    def has(self, name: str) -> bool:
        return name in self.entries

    @property
    def is_git_checkout(self) -> bool:
        return ".git" in self.entries


@dataclass(frozen=True)
class ArchivePlan:
    name: str
    paths: tuple[str, ...]


def archive_plan(inventory: Inventory) -> list[ArchivePlan]:
    """The archives a backup takes of this directory; an archive whose paths are all absent is skipped."""
    plans = [
        ArchivePlan(MKDOCS, tuple(p for p in ("mkdocs",) if inventory.has(p))),
        ArchivePlan(CONFIGS_AND_NGINX, tuple(p for p in ("configs", "nginx") if inventory.has(p))),
        ArchivePlan(CONFIG_FILES, tuple(config_files(inventory))),
    ]
    return [plan for plan in plans if plan.paths]


def config_files(inventory: Inventory) -> list[str]:
    """Top-level regular files (or symlinks) that look like configuration, sorted."""
    return sorted(
        name
        for name, kind in inventory.entries.items()
        if kind in ("f", "l")
        and any(fnmatch.fnmatchcase(name, pattern) for pattern in CONFIG_FILE_PATTERNS)
        and not any(fnmatch.fnmatchcase(name, pattern) for pattern in IGNORED_PATTERNS)
    )


def folder_name(started: datetime, label: str) -> str:
    return f"{started.strftime(TIMESTAMP_FORMAT)}-{label}"


def instance_backups_folder(*, node_name: str, slug: str) -> str:
    """The location prefix of an instance's backups."""
    return f"{node_name}/{slug}"


def partial_of(path: Path) -> Path:
    return path.with_name(path.name + PARTIAL_SUFFIX)
