"""Fixtures for the Django side of the templates: releases, tenants on a local node, a command runner."""

import itertools
import posixpath
from collections.abc import Callable
from dataclasses import dataclass
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from instances.models import Instance
from instances.preview import instance_render
from upgrades.models import Release

# Every tenant of these tests gets its own block of loopback ports, so tenants on one node never clash.
_port_blocks = itertools.count(31000, 10)

APP_SECRET = "tb-app-secret-7Qm2xV9pLw"


@pytest.fixture
def testbed_release(db) -> Release:
    return Release.objects.create(
        version="v1.0.0", image_tag="v1", template_set="testbed", registry="127.0.0.1:5000", is_default=True
    )


@pytest.fixture
def campaign_release(db) -> Release:
    return Release.objects.create(
        version="v2.10.3", image_tag="v2.10.3", template_set="campaign", registry="registry.example.org/campaign"
    )


def testbed_ports() -> dict[str, int]:
    base = next(_port_blocks)
    return {"web": base, "api": base + 1, "docs": base + 2, "extra": base + 3}


@pytest.fixture
def local_node(make_node):
    return make_node(driver="local")


@pytest.fixture
def make_tenant(make_instance, local_node, tmp_path) -> Callable[..., Instance]:
    """A testbed tenant on the local node, its install directory a fresh tmp_path subdirectory."""

    def make(*, node=None, secret: str = APP_SECRET, **fields) -> Instance:
        n = next(_port_blocks)
        install_dir = tmp_path / f"tenant-{n}"
        install_dir.mkdir()
        fields = {"install_dir": str(install_dir), "ports": testbed_ports(), **fields}
        instance = make_instance(node=node or local_node, **fields)
        if not instance.is_registered:
            instance.set_secrets({**instance.get_secrets(), "APP_SECRET": secret})
            instance.save()
        return instance

    return make


def install(instance: Instance, release=None, *, driver=None) -> dict[str, bytes]:
    """Put the release's render on the node, as a finished upgrade would have left it."""
    _, _, files = instance_render(instance=instance, release=release)
    for path, rendered in files.items():
        target = posixpath.join(instance.install_dir, path)
        if driver is None:
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            Path(target).write_bytes(rendered.content)
            Path(target).chmod(rendered.mode)
        else:
            driver.run(["mkdir", "-p", posixpath.dirname(target)], check=True)
            driver.write_file(target, rendered.content, rendered.mode)
    return {path: f.content for path, f in files.items()}


@dataclass
class CommandRun:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def run_command(name: str, *args: str) -> CommandRun:
    """Run a management command; its exit code as `manage.py` would end with it."""
    out, err = StringIO(), StringIO()
    try:
        call_command(name, *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = exc.code
    except CommandError as exc:
        code = exc.returncode
        err.write(str(exc))
    return CommandRun(code, out.getvalue(), err.getvalue())
