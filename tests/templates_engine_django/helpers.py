"""Helpers of the template tests on the Django side: put a render on a node, run a management command."""

import posixpath
from dataclasses import dataclass
from io import StringIO
from pathlib import Path

from django.core.management import call_command
from django.core.management.base import CommandError

from instances.models import Instance
from instances.preview import instance_render

APP_SECRET = "tb-app-secret-7Qm2xV9pLw"


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
