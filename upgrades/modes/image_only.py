"""Quick upgrade: move a tenant to another image tag by changing IMAGE_TAG in its .env.

precheck → checksum protected paths → keep .env → (already there? done) → set IMAGE_TAG → pull (or
build, or ship) → up -d --wait → verify the image ID every container runs → health → protected paths
unchanged → record the version observed.
Rollback: put the kept .env back (from the copy on the node), up -d --wait, health, verify again.
"""

from ..choices import UpgradeMode
from ..runner import AlreadyDone, Step, StepContext
from . import Mode, images, protection, register_mode, require
from . import tenant_steps as ops


def steps(ctx: StepContext) -> list[Step]:
    return [
        Step("precheck", "precheck", lambda c: ops.precheck(c, need_files=(ops.ENV_FILE,)), timeout=60),
        Step("checksum_protected", "checksum protected paths", ops.checksum_protected_before, timeout=300),
        Step("keep_env", "keep a copy of .env", _keep_env, timeout=60),
        Step("compare_running", "compare with the running version", _already_there, timeout=60),
        Step("set_image_tag", "set IMAGE_TAG in .env", _set_tag, changes=True, timeout=60),
        Step("pull_images", "pull images", images.pull_images, changes=True, timeout=900),
        *protection.content_hash_steps(),  # with CCP_PROTECTED_FULL_HASH: hashed while the pull ran
        Step("up", "start containers (up -d --wait)", lambda c: _up(c), changes=True, timeout=600),
        Step("verify_images", "verify running images", images.verify_running, changes=True, timeout=120),
        Step("health_check", "health check", lambda c: ops.check_health(c), changes=True, timeout=300),
        Step("protected_unchanged", "protected paths unchanged", ops.protected_unchanged, changes=True, timeout=300),
        Step("record_version", "record version", _record, changes=True, timeout=30),
    ]


def rollback(ctx: StepContext) -> list[Step]:
    return [
        Step("restore_env", "restore .env", _restore_env, timeout=60),
        Step("up_previous", "start previous containers (up -d --wait)", lambda c: ops.compose_up(c), timeout=600),
        Step("health_check_after_rollback", "health check after rollback", lambda c: ops.check_health(c), timeout=300),
        Step(
            "verify_images_after_rollback",
            "verify running images after rollback",
            _verify_after_rollback,
            timeout=120,
        ),
    ]


def _request(upgrade, *, release, image_tag: str, preview_hash: str) -> None:
    require(image_tag, "A Quick upgrade needs the image tag to move to.")
    upgrade.target_tag = upgrade.to_version = image_tag


MODE = register_mode(
    Mode(
        choice=UpgradeMode.IMAGE_ONLY,
        steps=steps,
        rollback=rollback,
        request=_request,
        recovers_from_kept_copies=True,
    )
)


def _keep_env(ctx: StepContext) -> str:
    env = ops.read_env(ctx)
    ctx.state["env_before"] = env
    ctx.state["tag_before"] = _tag_in_use(ctx, env)
    copy = ops.keep_copy(ctx, ops.ENV_FILE, env)
    ctx.upgrade.from_version = ctx.state["tag_before"]
    ctx.upgrade.state["kept"] = [ops.ENV_FILE]  # a recovery after a killed worker restores from the copy
    ctx.upgrade.save(update_fields=["from_version", "state"])
    return f"kept {copy}; IMAGE_TAG was {ctx.state['tag_before'] or '(unset)'}"


def _already_there(ctx: StepContext) -> str:
    target = ctx.upgrade.target_tag
    if ctx.state["tag_before"] == target and images.runs_target(ctx):
        ops.record_version(ctx, target)
        raise AlreadyDone(f"already running {target} and healthy: nothing to change")
    return f"{ctx.state['tag_before'] or '(unset)'} → {target}"


def _set_tag(ctx: StepContext) -> str:
    new, lines = ops.with_image_tag(ctx.state["env_before"].decode(), ctx.upgrade.target_tag)
    ctx.driver.write_file(ops.path_in(ctx, ops.ENV_FILE), new.encode())
    said = f"IMAGE_TAG={ctx.upgrade.target_tag}"
    if not lines:
        return f"{said} (appended: .env did not set IMAGE_TAG)"
    if len(lines) > 1:
        shown = ", ".join(str(n) for n in lines[:-1])
        return (
            f"{said} on line {lines[-1]}: IMAGE_TAG is set on lines {shown} and {lines[-1]}, and compose "
            f"uses the last one; the earlier line(s) are left as they were"
        )
    return f"{said} on line {lines[0]}"


def _up(ctx: StepContext) -> str:
    output = ops.compose_up(ctx)
    ops.run_hook("after_up", ctx)
    return output


def _record(ctx: StepContext) -> str:
    # verify running images passed: every container runs the image the target tag resolves to
    ops.record_version(ctx, ctx.upgrade.target_tag)
    return f"running {ctx.upgrade.target_tag}"


def _restore_env(ctx: StepContext) -> str:
    kept = ctx.state.get("env_before")
    if kept is None:  # a recovery in another worker: the copy on the node is the truth
        kept = ctx.driver.read_file(ops.kept_copy_path(ctx, ops.ENV_FILE))
    ctx.driver.write_file(ops.path_in(ctx, ops.ENV_FILE), kept)
    return f"IMAGE_TAG back to {ops.env_image_tag(kept.decode()) or '(unset)'}"


def _verify_after_rollback(ctx: StepContext) -> str:
    output = images.verify_running_now(ctx)
    ops.record_version(ctx, _tag_in_use(ctx, ops.read_env(ctx)))
    return output


def _tag_in_use(ctx: StepContext, env: bytes) -> str:
    """IMAGE_TAG as .env sets it; when .env leaves it to the compose file's default
    (`${IMAGE_TAG:-v1}`), the tag the project's images resolve to, if they all share one."""
    tag = ops.env_image_tag(env.decode())
    if tag:
        return tag
    tags = {
        s.image.rpartition(":")[2]
        for s in images.project_images(ctx, fresh=True)
        if "/" not in s.image.rpartition(":")[2] and ":" in s.image and "@" not in s.image
    }
    return tags.pop() if len(tags) == 1 else ""
