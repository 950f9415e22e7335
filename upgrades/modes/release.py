"""Upgrade to release: re-render the release's template set and write what changed.

(first deploy? create the install directory) → precheck → generate the secrets the release's template
set needs and a provisioned instance lacks (names only in the output; audited) → render and compare
with the approved preview
→ pre-upgrade backup (not for a first deploy: nothing is there yet) → checksum protected paths →
(nothing to change? done) → copy the files it will overwrite → write files atomically (never a
registered tenant's .env) → create bind-mounted folders → pull (or build, or ship) → up -d --wait
--remove-orphans → verify the image ID every container runs → health → protected paths unchanged →
record version.
Rollback: put the copies back (read from the node, so a recovery after a killed worker can do it too),
remove files that were new, up -d --wait --remove-orphans, health. A first deploy's rollback is
`compose down` and removal of what it created (see first_deploy).
"""

import posixpath

from instances.commands.files import mkdir_argv, remove_argv
from instances.context import template_set_for
from instances.health import running_tags
from instances.preview import instance_preview
from instances.services import instance_generate_missing_secrets
from templates_engine import FileStatus

from ..choices import UpgradeMode
from ..runner import AlreadyDone, Step, StepContext, StepError
from . import Mode, first_deploy, images, protection, register_mode, require
from . import tenant_steps as ops
from .backup_step import pre_upgrade_backup


def steps(ctx: StepContext) -> list[Step]:
    return [
        Step("prepare_install_dir", "prepare the install directory", first_deploy.prepare, timeout=60),
        Step("precheck", "precheck", lambda c: ops.precheck(c, need_compose=False), timeout=60),
        Step("generate_secrets", "generate missing secrets", _generate_secrets, timeout=60),
        Step("render_and_compare", "render and compare with the approved preview", _render_and_compare, timeout=120),
        Step("pre_upgrade_backup", "pre-upgrade backup", _backup, timeout=3600),
        Step("checksum_protected", "checksum protected paths", ops.checksum_protected_before, timeout=300),
        Step("compare_running", "compare with the running version", _already_there, timeout=60),
        Step("keep_copies", "copy the files it will overwrite", _keep_copies, timeout=300),
        Step("write_files", "write rendered files", _write_files, changes=True, timeout=300),
        Step(
            "create_bind_folders",
            "create bind-mounted folders",
            first_deploy.create_bind_folders,
            changes=True,
            timeout=60,
        ),
        Step("pull_images", "pull images", images.pull_images, changes=True, timeout=900),
        *protection.content_hash_steps(),  # with CCP_PROTECTED_FULL_HASH: hashed while the pull ran
        Step("up", "start containers (up -d --wait --remove-orphans)", lambda c: _up(c), changes=True, timeout=600),
        Step("verify_images", "verify running images", images.verify_running, changes=True, timeout=120),
        Step("health_check", "health check", lambda c: ops.check_health(c), changes=True, timeout=300),
        Step("protected_unchanged", "protected paths unchanged", ops.protected_unchanged, changes=True, timeout=300),
        Step("record_version", "record version", _record, changes=True, timeout=30),
    ]


def rollback(ctx: StepContext) -> list[Step]:
    if ctx.upgrade.is_first_deploy:
        return first_deploy.rollback(ctx)
    return [
        Step("restore_copies", "restore the copied files", _restore_copies, timeout=300),
        Step(
            "up_previous",
            "start previous containers (up -d --wait --remove-orphans)",
            lambda c: ops.compose_up(c, "--remove-orphans"),
            timeout=600,
        ),
        Step("health_check_after_rollback", "health check after rollback", lambda c: ops.check_health(c), timeout=300),
    ]


def _request(upgrade, *, release, image_tag: str, preview_hash: str) -> None:
    require(release, "An upgrade to a release needs the release.")
    require(preview_hash, "An upgrade to a release needs the preview hash the operator approved.")
    upgrade.release, upgrade.target_tag, upgrade.to_version = release, release.image_tag, release.version
    upgrade.approved_preview_hash = preview_hash


MODE = register_mode(
    Mode(
        choice=UpgradeMode.RELEASE,
        steps=steps,
        rollback=rollback,
        request=_request,
        recovers_from_kept_copies=True,
    )
)


def _generate_secrets(ctx: StepContext) -> str:
    """Before the render that is written: the files must carry real values, never placeholders. The
    names go on the row, so a resumed upgrade still hashes them as the approved preview did."""
    if ctx.instance.is_registered:
        return "registered tenant: it keeps its own .env, the panel generates no secrets for it"
    upgrade = ctx.upgrade
    names = instance_generate_missing_secrets(
        instance=ctx.instance, release=upgrade.release, user=upgrade.requested_by, reason=f"upgrade #{upgrade.pk}"
    )
    if names:
        upgrade.state["generated_secrets"] = sorted({*upgrade.state.get("generated_secrets", []), *names})
        upgrade.save(update_fields=["state"])
        ctx.secrets = list(ctx.instance.get_secrets().values())  # the new values are redacted from here on
        return f"generated {', '.join(names)} (stored encrypted; values never shown)"
    return "every secret the template set needs exists"


def _render_and_compare(ctx: StepContext) -> str:
    preview = instance_preview(
        instance=ctx.instance,
        release=ctx.upgrade.release,
        driver=ctx.driver,
        generated=ctx.upgrade.state.get("generated_secrets", []),
    )
    if preview.secrets_to_generate:  # never write a placeholder to a node
        raise StepError(f"Secret(s) {', '.join(preview.secrets_to_generate)} still missing after generation.")
    if preview.blocked:
        raise StepError(preview.blocked_reason)
    if preview.preview_hash != ctx.upgrade.approved_preview_hash:
        raise StepError(
            "The render or the files on the node changed since the preview was approved "
            f"(approved {ctx.upgrade.approved_preview_hash[:12] or 'nothing'}, now "
            f"{preview.preview_hash[:12]}). Preview again and approve the new preview."
        )
    _refuse_shadowing_compose_file(ctx)
    ctx.state["preview"] = preview
    return preview.preview.summary() + "\n" + preview.coverage.format()


# The names docker compose looks for, in the order it prefers them: the first one present is used.
COMPOSE_DEFAULT_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")


def _refuse_shadowing_compose_file(ctx: StepContext) -> None:
    """A tenant's own compose.yaml is read by compose before the docker-compose.yml a release writes:
    the release's file would sit unused beside it while the upgrade reported the release running."""
    written = template_set_for(ctx.instance, ctx.upgrade.release).compose_file
    if written not in COMPOSE_DEFAULT_NAMES:
        return
    preferred = COMPOSE_DEFAULT_NAMES[: COMPOSE_DEFAULT_NAMES.index(written)]
    found = [name for name in preferred if ctx.driver.exists(ops.path_in(ctx, name))]
    if found:
        raise StepError(
            f"{ctx.instance.install_dir} holds {found[0]}, which docker compose reads instead of the "
            f"{written} this release writes. Merge it into {written} (or remove it) on the node, "
            f"preview again and approve; nothing was changed."
        )


def _backup(ctx: StepContext) -> str:
    if ctx.upgrade.is_first_deploy:
        return "first deploy: there is nothing on the node to back up yet"
    return pre_upgrade_backup(ctx)


def _already_there(ctx: StepContext) -> str:
    preview = ctx.state["preview"]
    if (
        not ctx.upgrade.is_first_deploy
        and not preview.has_changes
        and images.runs_target(ctx)
        and running_tags(ctx.driver, ctx.instance) == {ctx.upgrade.release.image_tag}
    ):
        ops.record_version(ctx, ctx.upgrade.release.version)
        raise AlreadyDone(
            f"already on {ctx.upgrade.release}: every file matches and the stack runs {ctx.upgrade.release.image_tag}"
        )
    return f"{ctx.instance.observed_version or '(unknown)'} → {ctx.upgrade.release}"


def _changed_files(ctx: StepContext) -> list:
    preview = ctx.state["preview"]
    return [f for f in preview.preview.files if f.status != FileStatus.UNCHANGED]


def _keep_copies(ctx: StepContext) -> str:
    preview = ctx.state["preview"]
    kept, new = [], []
    for diff in _changed_files(ctx):
        before = preview.actual.get(diff.path)
        if before is None:
            new.append(diff.path)
        else:
            ops.keep_copy(ctx, diff.path, before)
            kept.append(diff.path)
    # On the row too: a recovery after a killed worker restores from these names.
    ctx.upgrade.state["kept"], ctx.upgrade.state["new"] = kept, new
    ctx.upgrade.save(update_fields=["state"])
    return f"kept {len(kept)} file(s) under .ccp/upgrades/{ctx.upgrade.pk}/; {len(new)} new file(s)"


def _write_files(ctx: StepContext) -> str:
    preview = ctx.state["preview"]
    written = []
    for diff in _changed_files(ctx):
        rendered = preview.files[diff.path]
        target = ops.path_in(ctx, diff.path)
        ctx.driver.run(mkdir_argv(posixpath.dirname(target)), timeout=30, check=True)
        ctx.driver.write_file(target, rendered.content, mode=rendered.mode)
        written.append(diff.path)
    return "wrote " + (", ".join(written) or "nothing")


def _up(ctx: StepContext) -> str:
    output = ops.compose_up(ctx, "--remove-orphans")
    ops.run_hook("after_up", ctx)
    return output


def _record(ctx: StepContext) -> str:
    release = ctx.upgrade.release
    tags = running_tags(ctx.driver, ctx.instance)
    if tags == {release.image_tag}:
        ops.record_version(ctx, release.version)
        return f"running {release}"
    # A registered tenant's own IMAGE_TAG in .env wins over the release's default: say so, record the truth.
    shown = ", ".join(sorted(tags)) or "unknown"
    ops.record_version(ctx, shown)
    return (
        f"files of {release} written, but the containers run {shown}: this tenant's .env pins IMAGE_TAG. "
        f"Run a Quick upgrade to {release.image_tag} to move its images."
    )


def _restore_copies(ctx: StepContext) -> str:
    kept, new = ctx.upgrade.state.get("kept", []), ctx.upgrade.state.get("new", [])
    for path in kept:
        ctx.driver.write_file(ops.path_in(ctx, path), ctx.driver.read_file(ops.kept_copy_path(ctx, path)))
    for path in new:
        ctx.driver.run(remove_argv(ops.path_in(ctx, path)), timeout=30, check=True)
    return f"restored {len(kept)} file(s), removed {len(new)} new file(s)"
