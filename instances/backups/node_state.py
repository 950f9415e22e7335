"""What a backup records about the node besides files: the install directory's top level, host state
and git state. A command that fails or is missing is written down, not fatal; a lost connection is."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings

from ccp.errors import CCPError
from instances.drivers import CommandTimeout
from instances.drivers.errors import command_line
from instances.node_commands import compose_argv

from . import scripts
from .layout import Inventory


def inventory(driver, install_dir: str) -> Inventory:
    result = driver.run(
        ["sh", "-c", scripts.INVENTORY, "ccp-inventory", install_dir], timeout=settings.CCP_BACKUP_COMMAND_TIMEOUT
    )
    if result.exit_code == 2:
        raise CCPError(
            f"The install directory {install_dir} does not exist on node {driver.label} "
            "(or the node account cannot enter it)."
        )
    if not result.ok:
        raise CCPError(
            f"Cannot list {install_dir} on node {driver.label}: {result.stderr.decode(errors='replace').strip()}"
        )
    entries = {}
    for record in result.stdout.split(b"\0"):
        if record:
            kind, _, name = record.decode("utf-8", errors="surrogateescape").partition(" ")
            entries[name] = kind
    return Inventory(entries)


def host_state(driver, instance, when: datetime) -> str:
    sections = [
        ("compose ps", compose_argv(instance, "ps", "--all")),
        ("compose images", compose_argv(instance, "images")),
        ("images (full IDs)", ["docker", "image", "ls", "--no-trunc", "--digests"]),
        ("disk usage", ["df", "-P", "-k", instance.install_dir]),
        ("install directory size (KiB)", ["du", "-s", "-k", instance.install_dir]),
        ("kernel", ["uname", "-a"]),
        ("docker", ["docker", "version", "--format", "client {{.Client.Version}}, server {{.Server.Version}}"]),
    ]
    title = f"# Host state of instance {instance.slug} on node {instance.node.name}, {when:%Y-%m-%dT%H:%M:%SZ}"
    return _report(driver, title, sections, cwd=instance.install_dir)


def git_state(driver, install_dir: str) -> str:
    # safe.directory: the checkout may belong to another account than the one CCP logs in as.
    git = ["git", "-c", f"safe.directory={install_dir}", "-C", install_dir]
    sections = [
        ("HEAD", [*git, "rev-parse", "HEAD"]),
        ("branch", [*git, "rev-parse", "--abbrev-ref", "HEAD"]),
        ("status", [*git, "status", "--short", "--branch"]),
        ("stash list", [*git, "stash", "list"]),
    ]
    return _report(driver, f"# Git state of {install_dir}", sections)


def _report(driver, title: str, sections: list[tuple[str, list[str]]], cwd: str | None = None) -> str:
    parts = [title, ""]
    for heading, argv in sections:
        parts += [f"## {heading}", f"$ {command_line(argv, limit=400)}"]
        try:
            result = driver.run(argv, timeout=settings.CCP_BACKUP_COMMAND_TIMEOUT, cwd=cwd)
        except CommandTimeout as error:
            parts += [f"(stopped: {error.message})", ""]
            continue
        parts.append(f"(exit code {result.exit_code})")
        parts.append(result.stdout.decode("utf-8", errors="replace").rstrip("\n"))
        if result.stderr.strip():
            parts.append("stderr: " + result.stderr.decode("utf-8", errors="replace").rstrip("\n"))
        parts.append("")
    return "\n".join(parts)
