"""Preview a release upgrade of one instance: what would change on the node, and whether it may go ahead."""

from django.core.management.base import BaseCommand

from ccp.errors import CCPError
from instances.management.cli import fail, instance_by_slug
from instances.selectors import PreviewReport, instance_preview_report

EXIT_NO_CHANGES, EXIT_CHANGES, EXIT_BLOCKED = 0, 1, 2


class Command(BaseCommand):
    help = (
        "Compare the files a release renders for an instance with the files on its node: per-file status, "
        "values-only or structural, the diff, and env coverage. Secret values are never printed. "
        "Exit code: 0 no changes, 1 changes, 2 blocked or error."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("slug", help="The instance's slug.")
        parser.add_argument("--release", default="", help="Release version (default: the fleet default release).")
        parser.add_argument("--no-diff", action="store_true", help="List the files without their diffs.")

    def handle(self, *args, slug: str, release: str, no_diff: bool, **options) -> None:
        instance = instance_by_slug(slug)
        try:
            report = instance_preview_report(instance=instance, release=release)
        except CCPError as exc:
            raise fail(exc.message, instance=instance) from None
        self.stdout.write(format_report(report, diffs=not no_diff))
        if report.blocked:
            raise SystemExit(EXIT_BLOCKED)
        if report.has_changes:
            raise SystemExit(EXIT_CHANGES)


def format_report(report: PreviewReport, *, diffs: bool = True) -> str:
    instance = report.instance
    lines = [
        f"Preview of {instance} on node {instance.node} for release {report.release} "
        f"(template set {report.template_set})",
        "",
        "Files:",
    ]
    for f in report.files:
        kind = "-" if f.kind == "none" else f.kind
        lines.append(f"  {f.status:<9}  {kind:<11}  {f.path}")
    if report.orphaned:
        lines += ["", "No longer rendered (left in place on the node):"] + [f"  {p}" for p in report.orphaned]
    lines += ["", "Env coverage:"] + [f"  {note.level.upper()}: {note.text}" for note in report.notes]
    if diffs and report.has_changes:
        lines.append("")
        lines += [f.diff.rstrip("\n") for f in report.changes]
    lines.append("")
    if report.blocked:
        lines.append(f"BLOCKED: {report.blocked_reason}")
    lines.append(f"{report.summary()} Preview hash: {report.preview_hash}")
    return "\n".join(lines)
