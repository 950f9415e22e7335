"""The images of a tenant's stack: getting them onto the node, and checking what really runs.

- Pull: `compose pull --ignore-buildable`, so a service built on the node never sends its image name
  to a registry (compose would ask Docker Hub for a name like `tenant-app:v2`).
- Build: services with `build:` whose target image is not on the node are built there.
- Ship: a node without registry access gets each image from where it is (the panel host's engine, or
  the node named as the image source), pulled on the panel host only when neither has it, and not at
  all when the node already has that image ID. A worker without docker (on another host than the
  engines) never runs it: `docker save` on the source node streams through the worker's two SSH
  connections into `docker load` on the target node, and an image neither has is pulled on the
  source node when that node has registry access.
- Verify: after `up`, the image ID every container runs must be the ID its service's image resolves to.
"""

import re
import shutil
import time
from dataclasses import dataclass

from instances.commands import docker
from instances.drivers import LocalDriver, driver_for
from instances.node_queries import compose_config, image_id, image_ids, project_containers

from ..registry import missing_from_registry
from ..runner import StepContext, StepError
from .tenant_steps import compose, decoded

PROGRESS_SECONDS = 1.0
CHUNK = 1 << 20


@dataclass(frozen=True)
class ServiceImage:
    service: str
    image: str
    buildable: bool


def project_images(ctx: StepContext, *, fresh: bool = False) -> list[ServiceImage]:
    """Each active service of the project and the image it runs (compose's default name for a built
    service without `image:`). Read once per upgrade when the images are fetched and reused by the
    verification after `up`; `fresh` reads again (the rollback, after the old files are back)."""
    if not fresh and "project_images" in ctx.state:
        return ctx.state["project_images"]
    config = compose_config(ctx.driver, ctx.instance, timeout=ctx.timeout)
    project = config.get("name") or ctx.instance.compose_project or ctx.instance.slug
    found = [
        ServiceImage(name, service.get("image") or f"{project}-{name}", "build" in service)
        for name, service in sorted((config.get("services") or {}).items())
        if _replicas(service) != 0
    ]
    ctx.state["project_images"] = found
    return found


def _replicas(service: dict) -> int | None:
    """A service scaled to 0 runs no container, and none is expected."""
    replicas = (service.get("deploy") or {}).get("replicas", service.get("scale"))
    return int(replicas) if isinstance(replicas, int | str) and str(replicas).isdigit() else None


def short(image_id_: str | None) -> str:
    return (image_id_ or "none").removeprefix("sha256:")[:12]


# --- getting images onto the node ----------------------------------------------------------------


def pull_images(ctx: StepContext) -> str:
    images = project_images(ctx, fresh=True)
    lines = []
    fetched = sorted({s.image for s in images if not s.buildable})
    if fetched:
        if ctx.node.registry_access:
            result = compose(ctx, "pull", "--quiet", "--ignore-buildable", timeout=ctx.timeout, check=False)
            if result.exit_code != 0:
                raise StepError(pull_failure(fetched, decoded(result)))
            lines.append(decoded(result).strip() or "pulled " + ", ".join(fetched))
        else:
            lines.append(ship_images(ctx, fetched))
    built = [s for s in images if s.buildable]
    if built:
        lines.append(build_missing(ctx, built))
    return "\n".join(line for line in lines if line)


def pull_failure(images: list[str], output: str) -> str:
    """The sentence of a failed pull first ("the image … does not exist in the registry"), compose's words after."""
    missing = missing_from_registry(images)
    if missing:
        image, tags = missing[0]
        has = f" (it has {', '.join(tags[:10])})" if tags else " (it has no tag of that repository)"
        first = f"The image {image} does not exist in the registry{has}: check the tag."
    else:
        first = f"docker compose pull failed for {', '.join(images)}."
    return f"{first}\n{output.strip()[-600:]}"


def build_missing(ctx: StepContext, services: list[ServiceImage]) -> str:
    """Build (on the node) the services whose target image the node does not have yet."""
    lines, missing = [], []
    for service in services:
        found = image_id(ctx.driver, service.image)
        if found:
            lines.append(f"{service.service}: {service.image} is on the node ({short(found)}), not rebuilt")
        else:
            missing.append(service)
    if missing:
        names = [s.service for s in missing]
        ctx.output(f"building {', '.join(names)} on the node\n")
        result = compose(ctx, "build", *names, timeout=ctx.timeout, check=False)
        output = local_names(decoded(result))
        if result.exit_code != 0:
            raise StepError(f"docker compose build of {', '.join(names)} failed: {output.strip()[-600:]}")
        ctx.output(output)
        for service in missing:
            lines.append(f"{service.service}: built {service.image} ({short(image_id(ctx.driver, service.image))})")
    return "\n".join(lines)


# BuildKit reports the tag it gives a built image under its canonical name ("naming to
# docker.io/tenant-app:v2") although nothing leaves the node. Shown as the tenant wrote it, so that a
# registry named in a step's output always means one was really asked (e.g. "load metadata for …").
_CANONICAL_LOCAL_NAME = re.compile(r"(naming to )docker\.io/(?:library/)?")


def local_names(build_output: str) -> str:
    return _CANONICAL_LOCAL_NAME.sub(r"\1", build_output)


def ship_images(ctx: StepContext, images: list[str]) -> str:
    """The node has no registry access: copy each image with `docker save | docker load` from where it is."""
    lines = []
    for image in images:
        lines.append(_ship_one(ctx, image))
        ctx.check_cancel()
    return "\n".join(lines)


def _ship_one(ctx: StepContext, image: str) -> str:
    if "@" in image:  # docker load restores an image's ID, never the registry digest it was pulled by
        on_node = image_id(ctx.driver, image)
        if on_node:
            return f"{image}: the node has it ({short(on_node)}); nothing transferred"
        raise StepError(
            f"{image} is pinned by digest and {ctx.node} has no registry access: an image copied "
            f"with docker save/load never carries its registry digest, so the node cannot run it. "
            f"Pin the service by tag, or give the node registry access."
        )
    found = _image_source(ctx, image)
    if found is None:
        on_node = image_id(ctx.driver, image)
        if on_node:  # e.g. built on the node by hand: nothing else to compare with, and nothing to send
            return f"{image}: only the node has it ({short(on_node)}); nothing transferred"
        found = _pull_on_panel(ctx, image)
    source, where, wanted = found
    if image_id(ctx.driver, wanted):  # the node has this exact image, maybe under another name
        if image_id(ctx.driver, image) != wanted:
            ctx.driver.run(docker.image_tag_argv(wanted, image), timeout=60, check=True)
        return f"{image}: the node already has {short(wanted)}; nothing transferred"
    sent = _stream(ctx, source, image)
    arrived = image_id(ctx.driver, image)
    if arrived != wanted:
        raise StepError(f"{image} was shipped from {where} ({short(wanted)}) but the node now has {short(arrived)}.")
    return f"{image}: shipped {sent} bytes from {where} ({short(wanted)})"


def panel_engine() -> LocalDriver | None:
    """The docker engine of the host this worker runs on, or None when the worker has no docker."""
    return LocalDriver() if shutil.which("docker") else None


def _image_source(ctx: StepContext, image: str):
    """(driver, description, image ID) of where the image is: the panel host (when the worker has
    docker), else the node named as image source; None when neither has it."""
    panel = panel_engine()
    found = image_id(panel, image) if panel is not None else None
    if found:
        return panel, "the panel host", found
    source_node = ctx.node.image_source
    if source_node is not None:
        other = driver_for(source_node)
        found = image_id(other, image)
        if found:
            return other, f"node {source_node}", found
    return None


def _pull_on_panel(ctx: StepContext, image: str):
    """Neither the panel host nor the image source node has the image: pull it on the panel host, or
    on the image source node when this worker has no docker and that node has registry access."""
    panel, source_node = panel_engine(), ctx.node.image_source
    if panel is None:
        return _pull_on_source_node(ctx, image, source_node)
    ctx.output(f"{image}: neither the panel host nor an image source node has it; pulling it on the panel host\n")
    pulled = panel.run(docker.pull_argv(image), timeout=ctx.timeout)
    found = image_id(panel, image) if pulled.exit_code == 0 else None
    if not found:
        where = f"the panel host or node {source_node}" if source_node else "the panel host"
        raise StepError(
            f"{image} is not on {where} nor on {ctx.node}, and pulling it on the panel host failed: "
            f"{decoded(pulled).strip()[-300:]}"
        )
    return panel, "the panel host (pulled)", found


def _pull_on_source_node(ctx: StepContext, image: str, source_node):
    if source_node is None or not source_node.registry_access:
        where = f"node {source_node} (which has no registry access)" if source_node else "an image source node"
        raise StepError(
            f"{image} is neither on {ctx.node} nor on {where}, and this worker has no docker to pull it "
            f"with. Load it on {source_node or 'a node named as this node’s image source'}, or give that "
            f"node registry access."
        )
    ctx.output(f"{image}: neither node has it; pulling it on node {source_node}\n")
    other = driver_for(source_node)
    pulled = other.run(["docker", "pull", "--quiet", image], timeout=ctx.timeout)
    found = image_id(other, image) if pulled.exit_code == 0 else None
    if not found:
        raise StepError(f"{image} could not be pulled on node {source_node}: {decoded(pulled).strip()[-300:]}")
    return other, f"node {source_node} (pulled)", found


def _stream(ctx: StepContext, source, image: str) -> int:
    sent, last = 0, time.monotonic()
    with (
        source.open_stream_out(docker.save_argv(image)) as out,
        ctx.driver.open_stream_in(docker.load_argv()) as sink,
    ):
        while chunk := out.read(CHUNK):
            sink.write(chunk)
            sent += len(chunk)
            if time.monotonic() - last >= PROGRESS_SECONDS:
                last = time.monotonic()
                ctx.output(f"{image}: {sent} bytes sent\n")
    return sent


# --- what really runs ----------------------------------------------------------------------------


def running_differences(ctx: StepContext, *, fresh: bool = False) -> tuple[list[str], list[str]]:
    """Compare the image ID each container of the project runs with the ID its service's image has on
    the node. Returns (problems, one line per service that matches)."""
    services = project_images(ctx, fresh=fresh)
    ids = image_ids(ctx.driver, sorted({s.image for s in services}))
    expected = {s.service: (s.image, ids[s.image]) for s in services}
    problems, matches, seen = [], [], set()
    for container in project_containers(ctx.driver, ctx.instance):
        if container.service not in expected:
            continue  # an orphan of an earlier layout: not part of what this upgrade runs
        seen.add(container.service)
        image, wanted = expected[container.service]
        if wanted is None:
            problems.append(f"{container.service}: its image {image} is not on the node")
        elif container.image_id != wanted:
            problems.append(f"{container.service} runs {short(container.image_id)}, but {image} is {short(wanted)}")
        elif container.state == "exited" and container.exit_code == 0:
            # a one-shot job (migrations, an asset build) that ran on the target image and completed
            matches.append(f"{container.service} ran {image} ({short(container.image_id)}) and completed")
        elif container.state != "running":
            problems.append(f"{container.service} is {container.state}")
        elif container.health not in ("", "healthy"):
            problems.append(f"{container.service} is {container.health}")
        else:
            matches.append(f"{container.service} runs {image} ({short(container.image_id)})")
    problems += [f"{service} has no container" for service in sorted(set(expected) - seen)]
    return problems, matches


def verify_running(ctx: StepContext) -> str:
    """After `up`: every container runs the image ID its target image has (read when the images were fetched)."""
    problems, matches = running_differences(ctx)
    if problems:
        raise StepError("The containers do not run the target images: " + "; ".join(problems) + ".")
    return "\n".join(matches)


def verify_running_now(ctx: StepContext) -> str:
    """The same against the project as its files say now (after a rollback put the old ones back)."""
    problems, matches = running_differences(ctx, fresh=True)
    if problems:
        raise StepError("The containers do not run the images their configuration names: " + "; ".join(problems) + ".")
    return "\n".join(matches)


def runs_target(ctx: StepContext) -> bool:
    """Every service runs, healthy where it has a check, exactly the image its configuration names now."""
    problems, matches = running_differences(ctx, fresh=True)
    return not problems and bool(matches)
