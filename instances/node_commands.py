"""The docker and compose commands every operation runs on a node, in one place: argv lists only."""

import json
from dataclasses import dataclass

from ccp.errors import CCPError


def compose_argv(instance, *args: str) -> list[str]:
    """`docker compose` for the instance's project (run it with cwd=instance.install_dir)."""
    return ["docker", "compose", "--project-name", instance.compose_project or instance.slug, *args]


def compose_ps(driver, instance, *, include_stopped: bool = False, timeout: float = 60) -> list[dict]:
    """One dict per container of the project (Service, Image, State, Health, ID)."""
    args = ["ps", "--all", "--format", "json"] if include_stopped else ["ps", "--format", "json"]
    result = driver.run(compose_argv(instance, *args), cwd=instance.install_dir, timeout=timeout)
    text = result.stdout.decode().strip()
    if not text:
        return []
    if text.startswith("["):  # older compose versions print one JSON array
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def docker_versions(driver, node) -> tuple[str, str]:
    """(docker server version, compose version), or CCPError saying which of the two does not answer."""
    docker = driver.run(["docker", "version", "--format", "{{.Server.Version}}"], timeout=30)
    if docker.exit_code != 0:
        output = (docker.stdout + docker.stderr).decode(errors="replace").strip()
        raise CCPError(f"Docker does not answer on {node}: {output[-300:]}")
    compose = driver.run(["docker", "compose", "version", "--short"], timeout=30)
    if compose.exit_code != 0:
        raise CCPError(f"docker compose v2 is not installed on {node}.")
    return docker.stdout.decode().strip(), compose.stdout.decode().strip()


def free_disk_bytes(driver, path: str, *, fallback: str | None = None) -> int:
    """Free bytes on the file system holding `path` (or `fallback` when `path` does not exist yet)."""
    result = driver.run(["df", "-Pk", path], timeout=30, check=fallback is None)
    if result.exit_code != 0:
        result = driver.run(["df", "-Pk", fallback], timeout=30, check=True)
    return int(result.stdout.decode().splitlines()[-1].split()[3]) * 1024


def compose_config(driver, instance, *, timeout: float = 60) -> dict:
    """The project's resolved compose model (`config --format json`): what `up` would run, with the
    .env interpolated and inactive profiles left out."""
    result = driver.run(compose_argv(instance, "config", "--format", "json"), cwd=instance.install_dir, timeout=timeout)
    if result.exit_code != 0:
        output = (result.stdout + result.stderr).decode(errors="replace").strip()
        raise CCPError(f"The compose project in {instance.install_dir} does not load: {output[-400:]}")
    return json.loads(result.stdout.decode())


# One round trip for many images: one line per argument, its ID or empty when the engine lacks it.
_IMAGE_IDS = 'for i in "$@"; do docker image inspect --format "{{.Id}}" "$i" 2>/dev/null || echo; done'

# The project's containers as the engine sees them (not compose's view): one line each with the ID,
# the image ID it runs, its service, state, exit code and health. One-off `compose run` containers are left out.
_PROJECT_CONTAINERS = (
    'ids=$(docker ps --all --quiet --no-trunc --filter "label=com.docker.compose.project=$1" '
    '--filter "label=com.docker.compose.oneoff=False") || exit $?; [ -z "$ids" ] && exit 0; '
    "exec docker container inspect --format "
    '\'{{.Id}} {{.Image}} {{index .Config.Labels "com.docker.compose.service"}} {{.State.Status}} '
    "{{.State.ExitCode}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' $ids"
)


def image_id(driver, image: str, *, timeout: float = 60) -> str | None:
    """The ID (sha256:…) of an image on the engine the driver reaches, by reference or ID; None when absent."""
    return image_ids(driver, [image], timeout=timeout)[image]


def image_ids(driver, images: list[str], *, timeout: float = 60) -> dict[str, str | None]:
    """{image: its ID on the engine the driver reaches, or None when absent}, in one command."""
    if not images:
        return {}
    result = driver.run(["sh", "-c", _IMAGE_IDS, "ccp-image-ids", *images], timeout=timeout, check=True)
    lines = result.stdout.decode().split("\n")
    return {image: (lines[n].strip() if n < len(lines) else "") or None for n, image in enumerate(images)}


@dataclass(frozen=True)
class ProjectContainer:
    id: str
    image_id: str
    service: str
    state: str
    exit_code: int
    health: str  # "" when the container has no healthcheck


def project_containers(driver, instance, *, timeout: float = 60) -> list[ProjectContainer]:
    """Every container of the instance's compose project, running or not, as its engine reports it."""
    project = instance.compose_project or instance.slug
    result = driver.run(["sh", "-c", _PROJECT_CONTAINERS, "ccp-containers", project], timeout=timeout, check=True)
    found = []
    for line in result.stdout.decode().splitlines():
        fields = line.split(" ")
        if len(fields) >= 5:
            found.append(
                ProjectContainer(
                    fields[0],
                    fields[1],
                    fields[2],
                    fields[3],
                    int(fields[4]) if fields[4].lstrip("-").isdigit() else -1,
                    fields[5] if len(fields) > 5 else "",
                )
            )
    return found
