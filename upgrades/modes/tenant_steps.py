"""Operations on a tenant's directory that several modes share: checks, .env, compose, health, content.

Every remote command is an argv list; the driver quotes it with shlex.join.
"""

import posixpath

from django.conf import settings

from instances.commands.compose import compose_argv
from instances.commands.files import mkdir_argv
from instances.health import health_urls_of, probe_until_healthy
from instances.node_queries import compose_ps, project_containers
from instances.services import instance_record_observation
from instances.template_errors import engine_errors
from templates_engine import parse_env, with_env_value

from ..hooks import HOOKS
from ..runner import StepContext, StepError
from . import protection
from .precheck import precheck as run_precheck

ENV_FILE = ".env"


def path_in(ctx: StepContext, relative: str) -> str:
    return posixpath.join(ctx.instance.install_dir, relative)


def compose(ctx: StepContext, *args: str, timeout: float | None = None, check: bool = True, live: bool = False):
    """`docker compose <args>` in the instance directory, as its compose project. `live`: its output goes
    into the running step's record as it arrives (a slow `up --wait` is then not a silent minute)."""
    return ctx.driver.run(
        compose_argv(ctx.instance, *args),
        cwd=ctx.instance.install_dir,
        timeout=timeout or ctx.timeout,
        check=check,
        on_output=ctx.output_bytes if live else None,
    )


def decoded(result) -> str:
    return (result.stdout + result.stderr).decode(errors="replace")


# --- precheck ------------------------------------------------------------------------------------


def precheck(ctx: StepContext, *, need_files: tuple[str, ...] = (), need_compose: bool = True) -> str:
    """One round trip: see precheck.py."""
    return run_precheck(ctx, need_files=need_files, need_compose=need_compose)


# --- .env ----------------------------------------------------------------------------------------


def read_env(ctx: StepContext) -> bytes:
    return ctx.driver.read_file(path_in(ctx, ENV_FILE))


@engine_errors()
def env_image_tag(env_text: str) -> str:
    return parse_env(env_text).get("IMAGE_TAG", "")


@engine_errors()
def with_image_tag(env_text: str, tag: str) -> tuple[str, list[int]]:
    """The .env text with IMAGE_TAG set to `tag` as compose reads it (its last assignment), nothing
    else changed; and the lines where IMAGE_TAG was assigned."""
    return with_env_value(env_text, "IMAGE_TAG", tag)


def kept_copy_path(ctx: StepContext, relative: str) -> str:
    return path_in(ctx, f".ccp/upgrades/{ctx.upgrade.pk}/{relative}")


def keep_copy(ctx: StepContext, relative: str, content: bytes) -> str:
    """Keep a copy of a file the upgrade will change under .ccp/upgrades/<id>/ on the node."""
    copy = kept_copy_path(ctx, relative)
    ctx.driver.run(mkdir_argv(posixpath.dirname(copy)), timeout=30, check=True)
    ctx.driver.write_file(copy, content, mode=0o600)
    return copy


# --- containers ----------------------------------------------------------------------------------


def running_on_tag(ctx: StepContext, tag: str) -> bool:
    """Every container of the project runs (healthy where it has a check) an image tagged `tag`."""
    current = compose_ps(ctx.driver, ctx.instance, include_stopped=True)
    return bool(current) and all(
        c.get("State") == "running"
        and c.get("Health", "") in ("", "healthy")
        and c.get("Image", "").endswith(f":{tag}")
        for c in current
    )


def compose_up(ctx: StepContext, *extra: str) -> str:
    wait_timeout = str(int(max(ctx.timeout - 10, 10)))
    result = compose(
        ctx,
        "up",
        "--detach",
        "--wait",
        "--wait-timeout",
        wait_timeout,
        *extra,
        timeout=ctx.timeout,
        check=False,
        live=True,
    )
    if result.exit_code != 0 and not _only_jobs_completed(ctx):
        raise StepError(f"docker compose up did not bring the stack up healthy: {decoded(result).strip()[-600:]}")
    return ""  # its output is in the step already (live)


def _only_jobs_completed(ctx: StepContext) -> bool:
    """`up --wait` also fails ("container … exited (0)") for a one-shot service, a migration job that
    completed. That is no failure when it is the only thing wrong: every other container of the
    project runs, healthy where it has a check (the verification after `up` looks again, per service)."""
    containers = project_containers(ctx.driver, ctx.instance)
    completed = [c for c in containers if c.state == "exited" and c.exit_code == 0]
    others = [c for c in containers if c not in completed]
    return bool(completed) and all(c.state == "running" and c.health in ("", "healthy") for c in others)


# --- health --------------------------------------------------------------------------------------


def check_health(ctx: StepContext, *, within: float | None = None) -> str:
    """Every health URL answers 2xx from the node itself, retried until `within` seconds have passed."""
    urls = health_urls_of(ctx.instance)
    if not urls:
        return "no health URL configured; the compose healthchecks passed"
    failing, last = probe_until_healthy(
        ctx.driver, urls, within=within if within is not None else settings.CCP_HEALTH_TIMEOUT
    )
    if failing:
        raise StepError(f"Health check failed for {', '.join(failing)}: {last.strip()[-300:]}")
    return "healthy: " + ", ".join(urls)


# --- protected content (the listing and its digest: see protection.py) ---------------------------


def checksum_protected_before(ctx: StepContext) -> str:
    return protection.snapshot_before(ctx)


def protected_unchanged(ctx: StepContext) -> str:
    return protection.verify_unchanged(ctx)


def run_hook(name: str, ctx: StepContext) -> None:
    """Test seam: a test may register a callable for a named point of an upgrade (see upgrades.hooks)."""
    for hook in HOOKS.get(name, []):
        hook(ctx)


def record_version(ctx: StepContext, version: str) -> None:
    instance_record_observation(instance=ctx.instance, version=version, healthy=True)
