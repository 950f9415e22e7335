"""Full upgrade: run the tenant's own upgrade script on the node, detached, and follow its log.

precheck → pre-upgrade backup → checksum protected paths → (already there? done) → run the script as
a detached job (it survives a dropped SSH connection and a restarted worker; a restarted worker
re-attaches to it) → health → protected paths unchanged → record version.

There is no automatic rollback: the script may have migrated data. A failure leaves the instance
marked as needing attention, naming the pre-upgrade backup to restore from.
"""

import posixpath
import time

from instances.commands.files import run_in_directory_argv

from ..choices import UpgradeMode
from ..deadline import StepTimedOut
from ..runner import AlreadyDone, Step, StepContext, StepError
from . import Mode, protection, register_mode, require
from . import tenant_steps as ops
from .backup_step import pre_upgrade_backup

POLL_SECONDS = 1.0


def steps(ctx: StepContext) -> list[Step]:
    return [
        Step("precheck", "precheck", lambda c: ops.precheck(c, need_files=(c.instance.upgrade_script,)), timeout=60),
        Step("pre_upgrade_backup", "pre-upgrade backup", pre_upgrade_backup, timeout=3600),
        Step("checksum_protected", "checksum protected paths", ops.checksum_protected_before, timeout=300),
        *protection.content_hash_steps(),  # nothing to overlap with here: waited for at once
        Step("compare_running", "compare with the running version", _already_there, timeout=60),
        Step("run_script", "run the upgrade script", _run_script, changes=True, timeout=6 * 3600),
        Step("health_check", "health check", lambda c: ops.check_health(c), changes=True, timeout=300),
        Step("protected_unchanged", "protected paths unchanged", ops.protected_unchanged, changes=True, timeout=300),
        Step("record_version", "record version", _record, changes=True, timeout=30),
    ]


def rollback(ctx: StepContext) -> list[Step]:
    return []


def _request(upgrade, *, release, image_tag: str, preview_hash: str) -> None:
    target = release.image_tag if release else image_tag
    require(target, "A full upgrade needs the version (image tag or release) to pass to the script.")
    upgrade.release, upgrade.target_tag, upgrade.to_version = release, target, target


MODE = register_mode(
    Mode(
        choice=UpgradeMode.FULL,
        steps=steps,
        rollback=rollback,
        request=_request,
        resumes_detached_job=True,
    )
)


def _already_there(ctx: StepContext) -> str:
    target = ctx.upgrade.to_version
    env_tag = ops.env_image_tag(ops.read_env(ctx).decode()) if ctx.driver.exists(ops.path_in(ctx, ".env")) else ""
    if ctx.instance.observed_version == target and env_tag == target and ops.running_on_tag(ctx, target):
        raise AlreadyDone(f"already running {target} and healthy: the script was not run")
    return f"{ctx.instance.observed_version or '(unknown)'} → {target}"


def job_dir(ctx: StepContext) -> str:
    return posixpath.join(ctx.instance.install_dir, ".ccp", "jobs")


def _run_script(ctx: StepContext) -> str:
    upgrade = ctx.upgrade
    if not upgrade.detached_job_id:
        # The script runs in the install directory with the target version as its one argument.
        script = posixpath.join(ctx.instance.install_dir, ctx.instance.upgrade_script)
        argv = run_in_directory_argv(ctx.instance.install_dir, script, upgrade.to_version)
        upgrade.detached_job_id = ctx.driver.start_detached(argv, job_dir(ctx))
        upgrade.save(update_fields=["detached_job_id"])
    try:
        return follow_job(ctx)
    except StepTimedOut:
        # The runner's deadline passed: the script must not go on changing the node behind a failed step.
        stopped = ctx.driver.unbounded.stop_detached(job_dir(ctx), upgrade.detached_job_id)
        ctx.output(f"\n[{stopped}]\n")
        raise


def follow_job(ctx: StepContext) -> str:
    """Stream the job's log into the step until it ends. A resumed run starts again from the top of
    the log, so the step always holds the whole log (redacted)."""
    ctx.step.output = ""
    offset = 0
    while True:  # the runner's deadline ends the wait (upgrades.deadline)
        status = ctx.driver.poll_detached(job_dir(ctx), ctx.upgrade.detached_job_id, offset)
        offset = status.offset
        ctx.output(status.output.decode(errors="replace"))
        if not status.running:
            ctx.step.save(update_fields=["output"])
            if status.exit_code != 0:
                raise StepError(f"The upgrade script exited with code {status.exit_code}.")
            return ""
        time.sleep(POLL_SECONDS)


def _record(ctx: StepContext) -> str:
    ops.record_version(ctx, ctx.upgrade.to_version)
    return f"running {ctx.upgrade.to_version}"
