"""What a backup records about the node besides files: the install directory's top level, host state
and git state. A command that fails or is missing is written down, not fatal; a lost connection is."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings

from ccp.errors import CCPError
from instances.commands import backup as backup_commands
from instances.commands import docker, files
from instances.commands.compose import compose_argv
from instances.drivers import CommandTimeout
from instances.drivers.errors import command_line

from .layout import Inventory


def inventory(driver, install_dir: str) -> Inventory:
    result = driver.run(backup_commands.inventory_argv(install_dir), timeout=settings.CCP_BACKUP_COMMAND_TIMEOUT)
    if result.exit_code == 2:
        raise CCPError(
            f"The install directory {install_dir} does not exist on node {driver.label} "
            "(or the node account cannot enter it)."
        )
    if not result.ok:
        raise CCPError(
            f"Cannot list {install_dir} on node {driver.label}: {result.stderr.decode(errors='replace').strip()}"
        )
    return Inventory(backup_commands.parse_inventory(result.stdout))


def host_state(driver, instance, when: datetime) -> str:
    sections = [
        ("compose ps", compose_argv(instance, "ps", "--all")),
        ("compose images", compose_argv(instance, "images")),
        ("images (full IDs)", docker.image_list_argv()),
        ("disk usage", files.df_argv(instance.install_dir)),
        ("install directory size (KiB)", files.du_argv(instance.install_dir)),
        ("kernel", files.uname_argv()),
        ("docker", docker.versions_argv()),
    ]
    title = f"# Host state of instance {instance.slug} on node {instance.node.name}, {when:%Y-%m-%dT%H:%M:%SZ}"
    return _report(driver, title, sections, cwd=instance.install_dir)


def git_state(driver, install_dir: str) -> str:
    sections = [
        ("HEAD", files.git_argv(install_dir, "rev-parse", "HEAD")),
        ("branch", files.git_argv(install_dir, "rev-parse", "--abbrev-ref", "HEAD")),
        ("status", files.git_argv(install_dir, "status", "--short", "--branch")),
        ("stash list", files.git_argv(install_dir, "stash", "list")),
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
