"""Render an instance's template set into a local directory (the render harness of DESIGN.md §6)."""

from pathlib import Path

from django.core.management.base import BaseCommand

from ccp.errors import CCPError
from instances.management.cli import fail, instance_by_slug
from instances.preview import instance_render, missing_secrets
from instances.redaction import REDACTED, redact, secret_values
from templates_engine import RenderedFile, TemplateEngineError, write_rendered


class Command(BaseCommand):
    help = (
        "Render the files a release writes for an instance into OUT (nothing is sent to the node). "
        f"Secret values are written as {REDACTED} unless --reveal-secrets is given."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("slug", help="The instance's slug.")
        parser.add_argument("--out", required=True, type=Path, help="Directory to write into (must be empty).")
        parser.add_argument("--release", default="", help="Release version (default: the fleet default release).")
        parser.add_argument("--force", action="store_true", help="Write into OUT even if it is not empty.")
        parser.add_argument(
            "--reveal-secrets",
            action="store_true",
            help="Write the real secret values (the .env is written with mode 0600).",
        )

    def handle(self, *args, slug: str, out: Path, release: str, force: bool, reveal_secrets: bool, **options) -> None:
        instance = instance_by_slug(slug)
        if out.exists() and not out.is_dir():
            raise fail(f"{out} exists and is not a directory.")
        if out.is_dir() and any(out.iterdir()) and not force:
            raise fail(f"{out} is not empty; choose an empty directory or pass --force to write into it.")
        try:
            release_row, template_set, files = instance_render(instance=instance, release=release)
            if not reveal_secrets:
                secrets = secret_values(instance)
                files = {path: RenderedFile(f.path, redact(f.content, secrets), f.mode) for path, f in files.items()}
            write_rendered(files, out, private=True)  # 0600 files, 0700 folders: a render holds the .env
        except (CCPError, TemplateEngineError) as exc:  # write_rendered refuses unsafe paths itself
            raise fail(exc.message, instance=instance) from None
        except OSError as exc:
            raise fail(f"Cannot write into {out}: {exc.strerror or exc}.") from None

        self.stdout.write(
            f"Rendered {instance} for release {release_row} (template set {template_set.name}) "
            f"into {out} (files 0600, folders 0700; the mode each file gets on the node is shown):"
        )
        for f in files.values():
            self.stdout.write(f"  {f.mode:04o}  {f.path}")
        if instance.is_registered:
            self.stdout.write(f"No {template_set.env_file}: {instance} is registered and keeps its own.")
        if not reveal_secrets:
            self.stdout.write(f"Secret values are written as {REDACTED}; pass --reveal-secrets for the real ones.")
        pending = missing_secrets(instance, template_set)
        if pending:
            self.stdout.write(
                f"Will be generated: {', '.join(pending)} (written as placeholders; a release "
                'upgrade or "Generate missing secrets" generates them).'
            )
