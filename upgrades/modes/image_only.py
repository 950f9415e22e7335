"""Quick upgrade: move a tenant to another image tag by changing IMAGE_TAG in its .env.

precheck → checksum protected paths → keep .env → (already there? done) → set IMAGE_TAG → pull →
up -d --wait → health → protected paths unchanged → record version.
Rollback: put the kept .env back, up -d --wait, health.
"""

from ..runner import AlreadyDone, Step, StepContext
from . import node_ops as ops
from . import protection


def steps(ctx: StepContext) -> list[Step]:
    return [
        Step("precheck", lambda c: ops.precheck(c, need_files=(ops.ENV_FILE,)), timeout=60),
        Step("checksum protected paths", ops.checksum_protected_before, timeout=300),
        Step("keep a copy of .env", _keep_env, timeout=60),
        Step("compare with the running version", _already_there, timeout=60),
        Step("set IMAGE_TAG in .env", _set_tag, changes=True, timeout=60),
        Step("pull images", ops.pull_images, changes=True, timeout=900),
        *protection.content_hash_steps(),  # with CCP_PROTECTED_FULL_HASH: hashed while the pull ran
        Step("start containers (up -d --wait)", lambda c: _up(c), changes=True, timeout=600),
        Step("health check", lambda c: ops.check_health(c), changes=True, timeout=300),
        Step("protected paths unchanged", ops.protected_unchanged, changes=True, timeout=300),
        Step("record version", _record, changes=True, timeout=30),
    ]


def rollback(ctx: StepContext) -> list[Step]:
    return [
        Step("restore .env", _restore_env, timeout=60),
        Step("start previous containers (up -d --wait)", lambda c: ops.compose_up(c), timeout=600),
        Step("health check after rollback", lambda c: ops.check_health(c), timeout=300),
    ]


def _keep_env(ctx: StepContext) -> str:
    env = ops.read_env(ctx)
    ctx.state["env_before"] = env
    ctx.state["tag_before"] = ops.env_image_tag(env.decode())
    copy = ops.keep_copy(ctx, ops.ENV_FILE, env)
    ctx.upgrade.from_version = ctx.state["tag_before"]
    ctx.upgrade.save(update_fields=["from_version"])
    return f"kept {copy}; IMAGE_TAG was {ctx.state['tag_before'] or '(unset)'}"


def _already_there(ctx: StepContext) -> str:
    target = ctx.upgrade.target_tag
    if ctx.state["tag_before"] == target and ops.running_on_tag(ctx, target):
        ops.record_version(ctx, target)
        raise AlreadyDone(f"already running {target} and healthy: nothing to change")
    return f"{ctx.state['tag_before'] or '(unset)'} → {target}"


def _set_tag(ctx: StepContext) -> str:
    new = ops.with_image_tag(ctx.state["env_before"].decode(), ctx.upgrade.target_tag)
    ctx.driver.write_file(ops.path_in(ctx, ops.ENV_FILE), new.encode())
    return f"IMAGE_TAG={ctx.upgrade.target_tag}"


def _up(ctx: StepContext) -> str:
    output = ops.compose_up(ctx)
    ops.run_hook("after_up", ctx)
    return output


def _record(ctx: StepContext) -> str:
    ops.record_version(ctx, ctx.upgrade.target_tag)
    return f"running {ctx.upgrade.target_tag}"


def _restore_env(ctx: StepContext) -> str:
    ctx.driver.write_file(ops.path_in(ctx, ops.ENV_FILE), ctx.state["env_before"])
    return f"IMAGE_TAG back to {ctx.state['tag_before'] or '(unset)'}"
