"""Compare a template set's compose template with the canonical production compose file (DESIGN.md §6)."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from instances.management.cli import fail
from templates_engine import TemplateEngineError, check_drift, load_template_set

EXIT_NO_DRIFT, EXIT_DRIFT = 0, 1


class Command(BaseCommand):
    help = (
        "Check a template set against the canonical compose file: services, images (without tag), "
        "environment keys, volumes, ports, profiles, healthchecks, depends_on. Exit code: 0 no drift, "
        "1 drift, 2 error."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("canonical_file", type=Path, help="The canonical production docker-compose file.")
        parser.add_argument(
            "--set", dest="template_set", default="", help="Template set name (default: CCP_DEFAULT_TEMPLATE_SET)."
        )
        parser.add_argument(
            "--registry",
            default="",
            help="Registry prefix of the application images, stripped from both sides (default: CCP_IMAGE_REGISTRY).",
        )

    def handle(self, *args, canonical_file: Path, template_set: str, registry: str, **options) -> None:
        try:
            canonical_text = canonical_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise fail(f"Cannot read {canonical_file}: {getattr(exc, 'strerror', None) or exc}.") from None
        try:
            loaded = load_template_set(settings.CCP_TEMPLATE_ROOT, template_set or settings.CCP_DEFAULT_TEMPLATE_SET)
            report = check_drift(
                loaded,
                canonical_text,
                registry=registry or settings.CCP_IMAGE_REGISTRY,
                canonical_label=str(canonical_file),
            )
        except TemplateEngineError as exc:
            raise fail(exc.message) from None
        self.stdout.write(report.format())
        if report.has_drift:
            raise SystemExit(EXIT_DRIFT)
