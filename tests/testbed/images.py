"""Test images for the testbed: tiny `FROM scratch` busybox web apps in the local registry.

`127.0.0.1:<port>/ccp-test/app:{v1,v2,v3}` answer `/health` (200) and `/version` (the tag) on
`$BIND:$PORT` (default 127.0.0.1:8080); `:broken` is the same app whose health check never passes,
to exercise rollback. Every image carries a HEALTHCHECK so `docker compose up --wait` works without
one in the compose file.

Stdlib only, so `.ci` and `install.sh` can run it as a script: `python tests/testbed/images.py`.
The pytest fixtures import it. `ensure_images()` costs a few HTTP requests when the registry
already holds the current build.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import urllib.error
import urllib.request

REGISTRY_HOST = "127.0.0.1"
REGISTRY_PORT = int(os.environ.get("CCP_REGISTRY_PORT", "5500"))
REGISTRY = f"{REGISTRY_HOST}:{REGISTRY_PORT}"
REPOSITORY = f"{REGISTRY}/ccp-test/app"
HEALTHY_TAGS = ("v1", "v2", "v3")
BROKEN_TAG = "broken"
ALL_TAGS = (*HEALTHY_TAGS, BROKEN_TAG)
BUSYBOX = os.environ.get("CCP_TESTBED_BUSYBOX", "/bin/busybox")
RECIPE_LABEL = "org.ccp.testbed.recipe"
# Bump when the image layout changes without the script below changing.
RECIPE_VERSION = "1"

# PID 1 of the container. A busybox process as PID 1 ignores SIGTERM, which would make every
# recreate wait docker's 10 s stop timeout; the trap makes the app stop at once.
APP_SCRIPT = """#!/bin/sh
: "${PORT:=8080}" "${BIND:=127.0.0.1}"
httpd -f -p "$BIND:$PORT" -h /www &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid"; exit 0' TERM INT
wait "$pid"
"""

HEALTHCHECK = (
    "HEALTHCHECK --interval=1s --timeout=3s --retries=3 "
    'CMD wget -q -O /dev/null "http://${BIND:-127.0.0.1}:${PORT:-8080}/health" || exit 1'
)

MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
    )
)


def image_ref(tag: str) -> str:
    return f"{REPOSITORY}:{tag}"


def recipe_digest() -> str:
    """What a current image is built from; stored as a label so stale images get rebuilt."""
    h = hashlib.sha256(RECIPE_VERSION.encode())
    h.update(APP_SCRIPT.encode())
    h.update(HEALTHCHECK.encode())
    with open(BUSYBOX, "rb") as f:
        h.update(hashlib.sha256(f.read()).digest())
    return h.hexdigest()[:16]


def registry_answers(timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"http://{REGISTRY}/v2/", timeout=timeout) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


def docker_answers() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    probe = subprocess.run(
        [docker, "version", "--format", "{{.Server.Version}}"],
        capture_output=True,
        timeout=30,
        check=False,
    )
    return probe.returncode == 0


def _registry_json(path: str, accept: str) -> dict | None:
    request = urllib.request.Request(f"http://{REGISTRY}{path}", headers={"Accept": accept})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return None
        raise


def pushed_recipe(tag: str) -> str | None:
    """The recipe label of `tag` in the registry, or None when the tag is absent."""
    manifest = _registry_json(f"/v2/ccp-test/app/manifests/{tag}", MANIFEST_TYPES)
    if manifest is None or "config" not in manifest:
        return None
    config = _registry_json(f"/v2/ccp-test/app/blobs/{manifest['config']['digest']}", "*/*")
    labels = ((config or {}).get("config") or {}).get("Labels") or {}
    return labels.get(RECIPE_LABEL)


def _add_file(tar: tarfile.TarFile, name: str, data: bytes, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    tar.addfile(info, io.BytesIO(data))


def _add_dir(tar: tarfile.TarFile, name: str, mode: int = 0o755) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = mode
    tar.addfile(info)


def _applets() -> list[str]:
    listing = subprocess.run([BUSYBOX, "--list"], capture_output=True, check=True, text=True)
    return [name for name in listing.stdout.split() if name and name != "busybox"]


def rootfs_tar(tag: str) -> bytes:
    """The image's whole file system: busybox, its applets as symlinks, the app, /www."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for directory in ("bin", "etc", "www", "proc", "sys", "dev", "run"):
            _add_dir(tar, directory)
        _add_dir(tar, "tmp", 0o1777)
        with open(BUSYBOX, "rb") as f:
            _add_file(tar, "bin/busybox", f.read(), 0o755)
        for applet in _applets():
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type = tarfile.SYMTYPE
            link.linkname = "busybox"
            tar.addfile(link)
        _add_file(tar, "bin/ccp-app", APP_SCRIPT.encode(), 0o755)
        _add_file(tar, "etc/passwd", b"root:x:0:0:root:/:/bin/sh\n", 0o644)
        _add_file(tar, "etc/group", b"root:x:0:\n", 0o644)
        _add_file(tar, "www/version", tag.encode(), 0o644)
        _add_file(tar, "www/index.html", f"ccp-test app {tag}\n".encode(), 0o644)
        if tag != BROKEN_TAG:
            _add_file(tar, "www/health", b"ok\n", 0o644)
    return buffer.getvalue()


def build_and_push(tag: str, recipe: str) -> None:
    changes = [
        'CMD ["/bin/ccp-app"]',
        "ENV PATH=/bin",
        f"ENV CCP_APP_VERSION={tag}",
        HEALTHCHECK,
        f"LABEL {RECIPE_LABEL}={recipe}",
    ]
    argv = ["docker", "import"]
    for change in changes:
        argv += ["--change", change]
    argv += ["-", image_ref(tag)]
    subprocess.run(argv, input=rootfs_tar(tag), check=True, capture_output=True, timeout=120)
    subprocess.run(["docker", "push", image_ref(tag)], check=True, capture_output=True, timeout=300)


def ensure_images() -> list[str]:
    """Build and push every tag whose current build is not in the registry; returns the rebuilt tags."""
    recipe = recipe_digest()
    stale = [tag for tag in ALL_TAGS if pushed_recipe(tag) != recipe]
    for tag in stale:
        build_and_push(tag, recipe)
    return stale


def main() -> int:
    if not registry_answers():
        print(f"images: the registry at {REGISTRY} does not answer", file=sys.stderr)
        return 1
    try:
        rebuilt = ensure_images()
    except subprocess.CalledProcessError as error:
        print(f"images: {error.cmd[:2]} failed: {error.stderr.decode(errors='replace')}", file=sys.stderr)
        return 1
    print(f"images: {REPOSITORY} {' '.join(ALL_TAGS)} ({'rebuilt ' + ' '.join(rebuilt) if rebuilt else 'up to date'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
