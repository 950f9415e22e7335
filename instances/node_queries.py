"""What CCP asks a node's engine: versions, free disk, the compose project's containers and model,
image IDs, and many files at once. Each runs a command line built in instances/commands/ and reads
its output with the parser there; this module only runs them and turns failures into sentences."""

from ccp.errors import CCPError

from .commands import compose as compose_commands
from .commands import docker, files, tar
from .commands.docker import ProjectContainer
from .drivers import DriverError

__all__ = [
    "ProjectContainer",
    "compose_config",
    "compose_ps",
    "docker_versions",
    "free_disk_bytes",
    "image_id",
    "image_ids",
    "project_containers",
    "read_files",
]


def compose_ps(driver, instance, *, include_stopped: bool = False, timeout: float = 60) -> list[dict]:
    """One dict per container of the project (Service, Image, State, Health, ID)."""
    argv = compose_commands.ps_argv(instance, include_stopped=include_stopped)
    result = driver.run(argv, cwd=instance.install_dir, timeout=timeout)
    return compose_commands.parse_ps(result.stdout)


def docker_versions(driver, node) -> tuple[str, str]:
    """(docker server version, compose version), or CCPError saying which of the two does not answer."""
    server = driver.run(docker.server_version_argv(), timeout=30)
    if server.exit_code != 0:
        output = (server.stdout + server.stderr).decode(errors="replace").strip()
        raise CCPError(f"Docker does not answer on {node}: {output[-300:]}")
    compose = driver.run(compose_commands.version_argv(), timeout=30)
    if compose.exit_code != 0:
        raise CCPError(f"docker compose v2 is not installed on {node}.")
    return server.stdout.decode().strip(), compose.stdout.decode().strip()


def free_disk_bytes(driver, path: str, *, fallback: str | None = None) -> int:
    """Free bytes on the file system holding `path` (or `fallback` when `path` does not exist yet)."""
    result = driver.run(files.df_argv(path), timeout=30, check=fallback is None)
    if result.exit_code != 0:
        result = driver.run(files.df_argv(fallback), timeout=30, check=True)
    return files.parse_df_free_bytes(result.stdout)


def compose_config(driver, instance, *, timeout: float = 60) -> dict:
    """The project's resolved compose model (`config --format json`): what `up` would run, with the
    .env interpolated and inactive profiles left out."""
    result = driver.run(compose_commands.config_argv(instance), cwd=instance.install_dir, timeout=timeout)
    if result.exit_code != 0:
        output = (result.stdout + result.stderr).decode(errors="replace").strip()
        raise CCPError(f"The compose project in {instance.install_dir} does not load: {output[-400:]}")
    return compose_commands.parse_config(result.stdout)


def image_id(driver, image: str, *, timeout: float = 60) -> str | None:
    """The ID (sha256:…) of an image on the engine the driver reaches, by reference or ID; None when absent."""
    return image_ids(driver, [image], timeout=timeout)[image]


def image_ids(driver, images: list[str], *, timeout: float = 60) -> dict[str, str | None]:
    """{image: its ID on the engine the driver reaches, or None when absent}, in one command."""
    if not images:
        return {}
    result = driver.run(docker.image_ids_argv(images), timeout=timeout, check=True)
    return docker.parse_image_ids(result.stdout, images)


def project_containers(driver, instance, *, timeout: float = 60) -> list[ProjectContainer]:
    """Every container of the instance's compose project, running or not, as its engine reports it."""
    argv = docker.project_containers_argv(compose_commands.project_name(instance))
    result = driver.run(argv, timeout=timeout, check=True)
    return docker.parse_project_containers(result.stdout)


def read_files(driver, base: str, paths: list[str], *, timeout: float = 120) -> dict[str, bytes | None]:
    """Every file of `paths` under `base` on the node, in one round trip (one tar stream)."""
    if not paths:
        return {}
    result = driver.run(tar.read_files_argv(base, paths), timeout=timeout)
    label = getattr(driver, "label", "node")
    if result.exit_code != 0:
        if tar.base_missing(result.stderr, base):
            return dict.fromkeys(paths)  # no install directory yet: every file is missing
        output = result.stderr.decode(errors="replace").strip()
        raise DriverError(f"Cannot read files under {base} on node {label}: {output[-400:]}", node=label)
    return tar.parse_files(result.stdout, result.stderr, paths, node=label, base=base)
