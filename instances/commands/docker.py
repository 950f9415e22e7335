"""`docker` command lines and the parsers of their output (pure)."""

from dataclasses import dataclass

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


def server_version_argv() -> list[str]:
    return ["docker", "version", "--format", "{{.Server.Version}}"]


def versions_argv() -> list[str]:
    """Client and server version in one line, for a report."""
    return ["docker", "version", "--format", "client {{.Client.Version}}, server {{.Server.Version}}"]


def image_list_argv() -> list[str]:
    """Every image with its full ID and digest, for a report."""
    return ["docker", "image", "ls", "--no-trunc", "--digests"]


def image_tag_argv(source: str, target: str) -> list[str]:
    return ["docker", "image", "tag", source, target]


def pull_argv(image: str) -> list[str]:
    return ["docker", "pull", "--quiet", image]


def save_argv(image: str) -> list[str]:
    """The image as a tar stream on stdout (registry-less shipping)."""
    return ["docker", "save", image]


def load_argv() -> list[str]:
    """Load an image tar stream from stdin."""
    return ["docker", "load", "--quiet"]


def image_ids_argv(images: list[str]) -> list[str]:
    return ["sh", "-c", _IMAGE_IDS, "ccp-image-ids", *images]


def parse_image_ids(stdout: bytes, images: list[str]) -> dict[str, str | None]:
    """{image: its ID, or None when the engine lacks it}, from `image_ids_argv`'s one line per image."""
    lines = stdout.decode().split("\n")
    return {image: (lines[n].strip() if n < len(lines) else "") or None for n, image in enumerate(images)}


@dataclass(frozen=True)
class ProjectContainer:
    id: str
    image_id: str
    service: str
    state: str
    exit_code: int
    health: str  # "" when the container has no healthcheck


def project_containers_argv(project: str) -> list[str]:
    return ["sh", "-c", _PROJECT_CONTAINERS, "ccp-containers", project]


def parse_project_containers(stdout: bytes) -> list[ProjectContainer]:
    found = []
    for line in stdout.decode().splitlines():
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
