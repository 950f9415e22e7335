"""Operations on a tenant's directory that several modes share: checks, .env, compose, health, content.

Every remote command is an argv list; the driver quotes it with shlex.join.
"""

import posixpath

from django.conf import settings

from instances.health import health_urls_of, probe_until_healthy
from instances.node_commands import compose_argv, compose_ps, docker_versions, free_disk_bytes
from templates_engine import parse_env, with_env_value

from ..runner import StepContext, StepError

ENV_FILE = ".env"


def path_in(ctx: StepContext, relative: str) -> str:
    return posixpath.join(ctx.instance.install_dir, relative)


def compose(ctx: StepContext, *args: str, timeout: float | None = None, check: bool = True):
    """`docker compose <args>` in the instance directory, as its compose project."""
    return ctx.driver.run(compose_argv(ctx.instance, *args), cwd=ctx.instance.install_dir,
                          timeout=timeout or ctx.timeout, check=check)


def decoded(result) -> str:
    return (result.stdout + result.stderr).decode(errors="replace")


# --- precheck ------------------------------------------------------------------------------------

def precheck(ctx: StepContext, *, need_files: tuple[str, ...] = (), need_compose: bool = True) -> str:
    """The node answers, docker and compose answer, the instance directory has its files (and a compose
    project that loads), and there is free disk."""
    docker, compose_version = docker_versions(ctx.driver, ctx.node)
    lines = [f"docker {docker}", f"compose {compose_version}"]
    for name in need_files:
        if not ctx.driver.exists(path_in(ctx, name)):
            raise StepError(f"{path_in(ctx, name)} does not exist on {ctx.node}.")
    if need_compose:
        config = compose(ctx, "config", "--quiet", timeout=60, check=False)
        if config.exit_code != 0:
            raise StepError(f"The compose project in {ctx.instance.install_dir} does not load: "
                            f"{decoded(config).strip()[-400:]}")
    free_mb = free_disk_bytes(ctx.driver, ctx.instance.install_dir) // (1024 * 1024)
    minimum = settings.CCP_MIN_FREE_DISK_MB
    if free_mb < minimum:
        raise StepError(f"Only {free_mb} MB free under {ctx.instance.install_dir}; at least {minimum} MB needed.")
    lines.append(f"{free_mb} MB free")
    return "\n".join(lines)


# --- .env ----------------------------------------------------------------------------------------

def read_env(ctx: StepContext) -> bytes:
    return ctx.driver.read_file(path_in(ctx, ENV_FILE))


def env_image_tag(env_text: str) -> str:
    return parse_env(env_text).get("IMAGE_TAG", "")


def with_image_tag(env_text: str, tag: str) -> tuple[str, list[int]]:
    """The .env text with IMAGE_TAG set to `tag` as compose reads it (its last assignment), nothing
    else changed; and the lines where IMAGE_TAG was assigned."""
    return with_env_value(env_text, "IMAGE_TAG", tag)


def kept_copy_path(ctx: StepContext, relative: str) -> str:
    return path_in(ctx, f".ccp/upgrades/{ctx.upgrade.pk}/{relative}")


def keep_copy(ctx: StepContext, relative: str, content: bytes) -> str:
    """Keep a copy of a file the upgrade will change under .ccp/upgrades/<id>/ on the node."""
    copy = kept_copy_path(ctx, relative)
    ctx.driver.run(["mkdir", "-p", posixpath.dirname(copy)], timeout=30, check=True)
    ctx.driver.write_file(copy, content, mode=0o600)
    return copy


# --- containers ----------------------------------------------------------------------------------

def running_on_tag(ctx: StepContext, tag: str) -> bool:
    """Every container of the project runs (healthy where it has a check) an image tagged `tag`."""
    current = compose_ps(ctx.driver, ctx.instance, include_stopped=True)
    return bool(current) and all(
        c.get("State") == "running" and c.get("Health", "") in ("", "healthy") and c.get("Image", "").endswith(
            f":{tag}") for c in current)


def compose_up(ctx: StepContext, *extra: str) -> str:
    wait_timeout = str(int(max(ctx.timeout - 10, 10)))
    result = compose(ctx, "up", "--detach", "--wait", "--wait-timeout", wait_timeout, *extra,
                     timeout=ctx.timeout, check=False)
    if result.exit_code != 0:
        raise StepError(f"docker compose up did not bring the stack up healthy: {decoded(result).strip()[-600:]}")
    return decoded(result)


# --- health --------------------------------------------------------------------------------------

def check_health(ctx: StepContext, *, within: float | None = None) -> str:
    """Every health URL answers 2xx from the node itself, retried until `within` seconds have passed."""
    urls = health_urls_of(ctx.instance)
    if not urls:
        return "no health URL configured; the compose healthchecks passed"
    failing, last = probe_until_healthy(ctx.driver, urls,
                                        within=within if within is not None else settings.CCP_HEALTH_TIMEOUT)
    if failing:
        raise StepError(f"Health check failed for {', '.join(failing)}: {last.strip()[-300:]}")
    return "healthy: " + ", ".join(urls)


# --- protected content ---------------------------------------------------------------------------

def protected_checksums(ctx: StepContext) -> dict[str, str]:
    paths = [p for p in ctx.instance.protected_paths if ctx.driver.exists(path_in(ctx, p))]
    if not paths:
        return {}
    return ctx.driver.checksums([path_in(ctx, p) for p in paths], base=ctx.instance.install_dir)


def compare_protected(before: dict[str, str], after: dict[str, str]) -> list[str]:
    changed = [p for p in before if after.get(p) != before[p]]
    added = [p for p in after if p not in before]
    return sorted(changed + added)


def checksum_protected_before(ctx: StepContext) -> str:
    """Record the protected files' checksums on the upgrade row, so a resumed run can compare too."""
    ctx.upgrade.state["protected_before"] = protected_checksums(ctx)
    ctx.upgrade.save(update_fields=["state"])
    return f"{len(ctx.upgrade.state['protected_before'])} protected files"


def protected_unchanged(ctx: StepContext) -> str:
    before = ctx.upgrade.state["protected_before"]
    after = protected_checksums(ctx)
    differences = compare_protected(before, after)
    if differences:
        shown = ", ".join(differences[:10]) + (f" and {len(differences) - 10} more" if len(differences) > 10 else "")
        raise StepError(f"Protected content changed during the upgrade: {shown}.")
    return f"{len(after)} protected files unchanged"


def run_hook(name: str, ctx: StepContext) -> None:
    """Test seam: a test may register a callable for a named point of an upgrade (see upgrades.hooks)."""
    from ..hooks import HOOKS

    for hook in HOOKS.get(name, []):
        hook(ctx)


def record_version(ctx: StepContext, version: str) -> None:
    from instances.services import instance_record_observation

    instance_record_observation(instance=ctx.instance, version=version, healthy=True)
