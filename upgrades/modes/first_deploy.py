"""A release upgrade of an instance with no files on the node yet is a first deploy.

Before the precheck: create the install directory as the node's account. Before `up`: create every
folder the compose file bind-mounts from the instance directory (docker would create them as root, and
a later restore as the node account then fails with "Permission denied"). When a first deploy fails,
there is no previous stack to go back to: the rollback is `docker compose down` with the rendered files
still in place, then removal of what the deploy created.
"""

import posixpath

from instances.commands.files import mkdir_argv, remove_argv, rmdir_if_empty_argv
from instances.context import template_set_for
from instances.node_queries import compose_config, compose_ps

from ..runner import Step, StepContext, StepError
from . import tenant_steps as ops


def prepare(ctx: StepContext) -> str:
    """Decide whether this is a first deploy (neither the compose file nor .env exists) and, if so,
    create the install directory. Recorded on the upgrade, so the admin, API and history say "Deploy"."""
    instance, upgrade = ctx.instance, ctx.upgrade
    present = [name for name in _marker_files(ctx) if ctx.driver.exists(ops.path_in(ctx, name))]
    if present:
        return f"{instance.install_dir} holds {', '.join(present)}: an upgrade, not a first deploy"
    created = not ctx.driver.exists(instance.install_dir)
    if created:
        ctx.driver.run(mkdir_argv(instance.install_dir), timeout=30, check=True)
        ctx.state["changed"] = True  # from here on a failure must remove it again (the rollback)
    upgrade.is_first_deploy = True
    upgrade.state["created_install_dir"] = created
    upgrade.save(update_fields=["is_first_deploy", "state"])
    made = (
        f"created {instance.install_dir} as {ctx.node.ssh_user}"
        if created
        else f"{instance.install_dir} exists but holds no compose project"
    )
    return f"first deploy of {instance} on {ctx.node}: {made}"


def _marker_files(ctx: StepContext) -> list[str]:
    template_set = template_set_for(ctx.instance, ctx.upgrade.release)
    return [template_set.compose_file, template_set.env_file]


def create_bind_folders(ctx: StepContext) -> str:
    """Create, as the node account, each missing folder the compose file bind-mounts from the instance
    directory. Recorded on the upgrade so a failed first deploy removes them again."""
    root = ctx.instance.install_dir.rstrip("/") + "/"
    sources = set()
    for service in (compose_config(ctx.driver, ctx.instance, timeout=ctx.timeout).get("services") or {}).values():
        for volume in service.get("volumes") or []:
            source = volume.get("source", "") if isinstance(volume, dict) else ""
            if volume.get("type") == "bind" and source.startswith(root):
                sources.add(posixpath.normpath(source))
    missing = sorted(s for s in sources if not ctx.driver.exists(s))
    if missing:
        ctx.driver.run(mkdir_argv(*missing), timeout=30, check=True)
    ctx.upgrade.state["created_dirs"] = [posixpath.relpath(s, ctx.instance.install_dir) for s in missing]
    ctx.upgrade.save(update_fields=["state"])
    if not missing:
        return f"every bind-mounted folder exists ({len(sources)})"
    return "created " + ", ".join(posixpath.relpath(s, ctx.instance.install_dir) + "/" for s in missing)


def rollback(ctx: StepContext) -> list[Step]:
    return [
        Step("compose_down", "stop the deployed stack (compose down)", _down, timeout=300),
        Step("remove_created", "remove what the deploy created", _remove_created, timeout=120),
    ]


def _down(ctx: StepContext) -> str:
    compose_file = template_set_for(ctx.instance, ctx.upgrade.release).compose_file
    if not ctx.driver.exists(ops.path_in(ctx, compose_file)):
        return "nothing was started: the compose file was not written yet"
    result = ops.compose(ctx, "down", "--remove-orphans", timeout=ctx.timeout, check=False)
    left = compose_ps(ctx.driver, ctx.instance, include_stopped=True)
    if result.exit_code != 0 or left:
        names = ", ".join(c.get("Name", c.get("ID", "?")) for c in left)
        raise StepError(
            f"docker compose down did not remove the deployed stack ({names or 'no container left'}): "
            f"{ops.decoded(result).strip()[-400:]}"
        )
    return ops.decoded(result).strip() or "no container of the project is left"


def _remove_created(ctx: StepContext) -> str:
    """Remove the files the deploy wrote, the folders it made (only when empty: a container may have
    written data into one) and the install directory when the deploy created it and it is empty now."""
    upgrade, install_dir = ctx.upgrade, ctx.instance.install_dir
    files = upgrade.state.get("new", [])
    if files:
        ctx.driver.run(remove_argv(*[ops.path_in(ctx, f) for f in files]), timeout=30, check=True)
    ctx.driver.run(remove_argv(ops.path_in(ctx, f".ccp/upgrades/{upgrade.pk}"), recursive=True), timeout=30, check=True)
    folders = {posixpath.dirname(f) for f in files if posixpath.dirname(f)}
    folders |= set(upgrade.state.get("created_dirs", [])) | {".ccp/upgrades", ".ccp"}
    # Deepest first, so a parent is empty by the time its turn comes.
    for folder in sorted(folders, key=lambda f: f.count("/"), reverse=True):
        ctx.driver.run(rmdir_if_empty_argv(ops.path_in(ctx, folder)), timeout=30)
    lines = [f"removed {len(files)} file(s) the deploy wrote"]
    if upgrade.state.get("created_install_dir"):
        ctx.driver.run(rmdir_if_empty_argv(install_dir), timeout=30)
        if ctx.driver.exists(install_dir):
            lines.append(f"left {install_dir}: something else was written into it")
        else:
            lines.append(f"removed {install_dir}")
    left = [f for f in sorted(folders) if ctx.driver.exists(ops.path_in(ctx, f))]
    if left:
        lines.append("left (not empty): " + ", ".join(left))
    return "\n".join(lines)
