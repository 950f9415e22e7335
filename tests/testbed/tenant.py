"""A tenant of the testbed template set on a real node, for end-to-end tests and benchmarks.

`Tenant` is the one type every test's tenant has, and `tenant_create` the one place that builds it
(the fixtures of tests/*/conftest.py differ only in what they put on the node). `provision` does what
an install script would: renders the files, writes tenant content under mkdocs/, and brings the stack
up; `Tenant` reads back what is on the node and in docker.
"""

import hashlib
import json
import os
import posixpath
import socket
import subprocess
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

from instances.drivers import driver_for
from instances.models import Instance, Node
from instances.preview import instance_render
from instances.services import instance_save

MKDOCS_FILES = {
    "mkdocs/index.md": b"# Welcome\n\nHand-written by the tenant.\n",
    "mkdocs/docs/guide with spaces.md": b"A guide \xe2\x80\x94 edited by hand.\n",
    "mkdocs/docs/été.md": b"Unicode file name.\n",
    "mkdocs/mkdocs.yml": b"site_name: Tenant docs\n",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Tenant:
    instance: Instance
    node: Node
    path: Path
    docker_host: str = ""  # the node's own engine, when it is not the panel host's

    def docker_env(self) -> dict:
        return {**os.environ, "DOCKER_HOST": self.docker_host} if self.docker_host else dict(os.environ)

    def docker(self, *args: str) -> subprocess.CompletedProcess:
        """`docker …` against the node's engine."""
        return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120, env=self.docker_env())

    def image_id(self, image: str) -> str | None:
        """The ID the node's engine has for `image` (a reference or an ID), or None."""
        found = self.docker("image", "inspect", "--format", "{{.Id}}", image)
        return found.stdout.strip() or None if found.returncode == 0 else None

    def running_image_ids(self) -> dict[str, str]:
        """{service: ID of the image its container really runs}, read with docker inspect."""
        ids = [c["ID"] for c in self.containers()]
        if not ids:
            return {}
        out = self.docker(
            "container", "inspect", "--format", '{{index .Config.Labels "com.docker.compose.service"}} {{.Image}}', *ids
        ).stdout
        return dict(line.split(" ", 1) for line in out.splitlines() if " " in line)

    def project_container_names(self) -> list[str]:
        """`docker ps -a` of the node's engine, for this project (whatever compose thinks)."""
        label = f"label=com.docker.compose.project={self.instance.compose_project}"
        return self.docker("ps", "-a", "--filter", label, "--format", "{{.Names}}").stdout.split()

    def driver(self):
        return driver_for(self.node)

    def env(self) -> bytes:
        return (self.path / ".env").read_bytes()

    def compose(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["docker", "compose", "--project-name", self.instance.compose_project, *args],
            cwd=self.path,
            capture_output=True,
            text=True,
            timeout=120,
            env=self.docker_env(),
        )

    def remove_containers(self) -> None:
        """Remove the project's containers by label: works even when a test broke its compose file."""
        label = f"label=com.docker.compose.project={self.instance.compose_project}"
        ids = self.docker("ps", "-aq", "--filter", label).stdout.split()
        if ids:
            self.docker("rm", "--force", *ids)

    def containers(self) -> list[dict]:
        out = self.compose("ps", "--all", "--format", "json").stdout.strip()
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def container_ids(self) -> dict[str, str]:
        return {c["Service"]: c["ID"] for c in self.containers()}

    def images(self) -> set[str]:
        return {c["Image"].rsplit(":", 1)[-1] for c in self.containers()}

    def all_healthy(self) -> bool:
        current = self.containers()
        return bool(current) and all(c["State"] == "running" and c.get("Health") == "healthy" for c in current)

    def served_versions(self) -> set[str]:
        versions = set()
        for port in (self.instance.ports["web"], self.instance.ports["api"], self.instance.ports["docs"]):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/version", timeout=5) as response:  # noqa: S310
                versions.add(response.read().decode().strip())
        return versions

    def mkdocs_sums(self) -> dict[str, str]:
        root = self.path / "mkdocs"
        return {
            str(p.relative_to(self.path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))
            if p.is_file()
        }


def testbed_ports() -> dict[str, int]:
    """The ports the testbed template set needs, each a free loopback port."""
    return {"web": free_port(), "api": free_port(), "docs": free_port(), "extra": free_port()}


def tenant_create(
    *,
    node: Node,
    path: Path | str,
    slug: str = "",
    secrets: dict[str, str] | None = None,
    docker_host: str = "",
    **fields,
) -> Tenant:
    """An instance (saved as the panel saves one) whose install directory on `node` is `path`, as a
    Tenant. `fields` are further Instance fields; `secrets` are stored encrypted on top of the generated ones."""
    slug = slug or f"t{uuid.uuid4().hex[:8]}"
    instance = instance_save(
        instance=Instance(**{"name": slug, **fields, "slug": slug, "node": node, "install_dir": str(path)})
    )
    if secrets:
        instance.set_secrets({**instance.get_secrets(), **secrets})
        instance.save()
    return Tenant(instance=instance, node=node, path=Path(path), docker_host=docker_host)


def copy_image(image: str, *, to_host: str, from_host: str = "") -> None:
    """docker save | docker load between two engines (test set-up: what an operator did by hand)."""
    source = {**os.environ, "DOCKER_HOST": from_host} if from_host else dict(os.environ)
    save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE, env=source)
    subprocess.run(
        ["docker", "load", "--quiet"],
        stdin=save.stdout,
        check=True,
        capture_output=True,
        timeout=300,
        env={**os.environ, "DOCKER_HOST": to_host},
    )
    assert save.wait(timeout=60) == 0


def provision(tenant: Tenant, *, tag: str) -> None:
    """What the install script would have done: files, .env, tenant content, stack up at `tag`."""
    _, _, files = instance_render(instance=tenant.instance)
    driver = tenant.driver()
    for relative, rendered in files.items():
        target = posixpath.join(tenant.instance.install_dir, relative)
        driver.run(["mkdir", "-p", posixpath.dirname(target)], check=True)
        content = rendered.content
        if relative == ".env":
            content = content.replace(b"IMAGE_TAG=v1", f"IMAGE_TAG={tag}".encode())
        driver.write_file(target, content, mode=rendered.mode)
    for relative, content in MKDOCS_FILES.items():
        target = posixpath.join(tenant.instance.install_dir, relative)
        driver.run(["mkdir", "-p", posixpath.dirname(target)], check=True)
        driver.write_file(target, content)
    result = tenant.compose("up", "--detach", "--wait", "--wait-timeout", "60")
    assert result.returncode == 0, result.stderr
    Instance.objects.filter(pk=tenant.instance.pk).update(observed_version=tag)
    tenant.instance.refresh_from_db()
