"""Tenants the way install scripts really leave them: a hand-written .env (comments, extra variables, a
variable set twice, a symlink into another folder), hand-edited compose files, a service built on the
node. Start from a running registered tenant (make_tenant(registered=True)) and reshape it."""

import os
import shutil
from pathlib import Path

from tests.testbed import images

PUBLIC_REGISTRIES = ("docker.io", "registry-1.docker.io", "index.docker.io", "hub.docker.com")


def chown_like_parent(*paths: Path) -> None:
    for path in paths:
        owner = path.parent.stat()
        os.chown(path, owner.st_uid, owner.st_gid, follow_symlinks=False)


def handwritten_env(tenant, *, extra: str = "", tag_lines: tuple[str, ...] | None = None) -> bytes:
    """Rewrite the tenant's .env as a person would: comments, blank lines, quoting, an unrelated variable,
    and IMAGE_TAG on the lines given (default: one line with a comment). Returns the new bytes."""
    values = {}
    for line in tenant.env().decode().splitlines():
        if "=" in line and not line.startswith("#"):
            name, value = line.split("=", 1)
            values[name] = value
    tags = tag_lines or ("IMAGE_TAG=v1  # pinned by ops",)
    text = "\n".join(
        [
            "# Written by install.sh on 2024-03-02, then edited by hand.",
            f"COMPOSE_PROJECT_NAME={values['COMPOSE_PROJECT_NAME']}",
            tags[0],
            "",
            "# ports",
            f"WEB_PORT={values['WEB_PORT']}",
            f"API_PORT='{values['API_PORT']}'",
            f'DOCS_PORT="{values["DOCS_PORT"]}"',
            f"EXTRA_PORT={values['EXTRA_PORT']}",
            "export TZ=Europe/Paris",
            f"APP_SECRET={values['APP_SECRET']}",
            "SMTP_HOST=mail.example.org   # not used by the stack",
            *tags[1:],
            extra,
            "",
        ]
    )
    (tenant.path / ".env").write_text(text)
    return text.encode()


BUILDER_COMPOSE = """
  # Built on the node from its own folder (the original fleet had one such tenant).
  builder:
    build: ./builder
    image: {image}:${{IMAGE_TAG:-v1}}
    network_mode: host
    init: true
    command: ["/bin/busybox", "httpd", "-f", "-p", "127.0.0.1:${{BUILDER_PORT}}", "-h", "/www"]
    healthcheck:
      test: ["CMD", "/bin/busybox", "wget", "-q", "-O-", "http://127.0.0.1:${{BUILDER_PORT}}/health"]
      interval: 1s
      timeout: 2s
      retries: 5
"""

BUILDER_DOCKERFILE = """FROM scratch
COPY busybox /bin/busybox
COPY www /www
"""


def add_built_service(tenant, *, image: str, port: int) -> None:
    """A `build:` service made FROM scratch from the local static busybox; its image exists in no registry."""
    builder = tenant.path / "builder"
    (builder / "www").mkdir(parents=True)
    shutil.copy(images.BUSYBOX, builder / "busybox")
    (builder / "Dockerfile").write_text(BUILDER_DOCKERFILE)
    (builder / "www" / "health").write_text("ok\n")
    compose = tenant.path / "docker-compose.yml"
    compose.write_text(compose.read_text().rstrip("\n") + "\n" + BUILDER_COMPOSE.format(image=image))
    with open(tenant.path / ".env", "a") as env:
        env.write(f"BUILDER_PORT={port}\n")
    for path in (builder, builder / "www", builder / "busybox", builder / "Dockerfile", builder / "www" / "health"):
        chown_like_parent(path)


def public_registry_mentions(upgrade) -> list[str]:
    text = "\n".join(upgrade.steps.values_list("output", flat=True)) + upgrade.error
    return [name for name in PUBLIC_REGISTRIES if name in text]
