"""Reads behind the render and preview screens: what the API, the admin and the commands show.

Everything here is already redacted: a rendered file's secret values unless the caller may reveal
them, and a preview's always (an operator approves a preview by its hash, which covers the real
bytes, so the text shown never needs a secret).
"""

from dataclasses import dataclass

from django.db.models import Exists, OuterRef, Prefetch

from ccp.audit import audit_log
from templates_engine import ChangeKind, Coverage, FileStatus, side_by_side_html

from .models import Attention, Instance
from .preview import InstancePreview, instance_preview, instance_render, missing_secrets
from .redaction import env_secret_values, redact, secret_values

REVEAL_PERMISSION = "instances.reveal_secrets"


def user_may_reveal_secrets(user) -> bool:
    return bool(user and user.has_perm(REVEAL_PERMISSION))


# --- attention -------------------------------------------------------------------------------------


def needing_attention(queryset, value: bool = True):
    """Instances with (value=True) or without an unresolved attention record."""
    flagged = Attention.objects.filter(instance=OuterRef("pk"), resolved_at__isnull=True)
    return queryset.filter(Exists(flagged)) if value else queryset.exclude(Exists(flagged))


def with_open_attention(queryset):
    """Prefetch only the unresolved attention records (Instance.attention reads them)."""
    return queryset.prefetch_related(
        Prefetch("attentions", queryset=Attention.objects.filter(resolved_at__isnull=True))
    )


# --- render ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShownFile:
    path: str
    mode: int
    content: str

    @property
    def mode_octal(self) -> str:
        return f"{self.mode:04o}"


@dataclass(frozen=True)
class InstanceRender:
    instance: object
    release: object
    template_set: str
    files: tuple[ShownFile, ...]
    secrets_redacted: bool
    secrets_to_generate: tuple[str, ...] = ()  # rendered as placeholders; a release upgrade generates them


def instance_render_shown(*, instance, release=None, reveal_secrets: bool = False) -> InstanceRender:
    """The files `release` (default: the fleet default) renders for `instance`, as text."""
    release, template_set, files = instance_render(instance=instance, release=release)
    secrets = [] if reveal_secrets else secret_values(instance)
    shown = tuple(
        ShownFile(path, rendered.mode, redact(rendered.content.decode("utf-8", errors="replace"), secrets))
        for path, rendered in files.items()
    )
    return InstanceRender(
        instance=instance,
        release=release,
        template_set=template_set.name,
        files=shown,
        secrets_redacted=not reveal_secrets,
        secrets_to_generate=tuple(missing_secrets(instance, template_set)),
    )


# --- preview ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShownFileDiff:
    path: str
    status: FileStatus
    kind: ChangeKind
    diff: str
    before: str
    after: str

    @property
    def changed(self) -> bool:
        return self.status != FileStatus.UNCHANGED

    def side_by_side_html(self) -> str:
        """HTML table of the node's file against the render (escaped by difflib, safe to mark safe)."""
        return side_by_side_html(self.before, self.after)


@dataclass(frozen=True)
class CoverageNote:
    level: str  # "error": blocks the upgrade; "warning": worth a look; "info"
    text: str


@dataclass(frozen=True)
class PreviewReport:
    """A preview of one instance against one release, redacted, with env coverage in plain words."""

    instance: object
    release: object
    template_set: str
    files: tuple[ShownFileDiff, ...]
    orphaned: tuple[str, ...]
    coverage: Coverage
    notes: tuple[CoverageNote, ...]
    blocked: bool
    blocked_reason: str
    preview_hash: str
    kind: ChangeKind
    secrets_to_generate: tuple[str, ...] = ()  # shown as placeholders; the upgrade generates them

    @property
    def changes(self) -> list[ShownFileDiff]:
        return [f for f in self.files if f.changed]

    @property
    def has_changes(self) -> bool:
        return bool(self.changes)

    @property
    def note_texts(self) -> list[str]:
        return [note.text for note in self.notes]

    def summary(self) -> str:
        if not self.has_changes:
            return "No changes: the node already has every rendered file."
        return f"{len(self.changes)} of {len(self.files)} file(s) to write ({self.kind})."


def instance_preview_report(*, instance, release=None, driver=None) -> PreviewReport:
    """Render for `release` (a Release, a version, or None for the default), compare with the node."""
    return preview_report(instance_preview(instance=instance, release=release, driver=driver))


def preview_report(preview: InstancePreview) -> PreviewReport:
    secrets = preview_secret_values(preview)
    files = tuple(
        ShownFileDiff(
            path=f.path,
            status=f.status,
            kind=f.kind,
            diff=redact(f.unified_diff, secrets),
            before=redact(f.before, secrets),
            after=redact(f.after, secrets),
        )
        for f in preview.preview.files
    )
    return PreviewReport(
        instance=preview.instance,
        release=preview.release,
        template_set=preview.template_set.name,
        files=files,
        orphaned=preview.preview.orphaned,
        coverage=preview.coverage,
        notes=tuple(coverage_notes(preview)),
        blocked=preview.blocked,
        blocked_reason=redact(preview.blocked_reason, secrets),
        preview_hash=preview.preview_hash,
        kind=preview.preview.kind,
        secrets_to_generate=tuple(preview.secrets_to_generate),
    )


def preview_secret_values(preview: InstancePreview) -> list[str]:
    """What a preview must hide: the panel's secrets of the instance, and the secret values in the
    node's .env (old values the node still has, or a registered tenant's own), longest first."""
    env_file = preview.template_set.env_file
    node_env = preview.env_text if preview.instance.is_registered else preview.actual.get(env_file)
    if isinstance(node_env, bytes):
        node_env = node_env.decode("utf-8", errors="replace")
    found = set(secret_values(preview.instance))
    found.update(env_secret_values(node_env or "", preview.template_set.secrets))
    return sorted(found, key=len, reverse=True)


def coverage_notes(preview: InstancePreview) -> list[CoverageNote]:
    """Env coverage as sentences an operator can act on."""
    coverage, instance = preview.coverage, preview.instance
    notes = []
    if instance.is_registered:
        if not preview.env_found:
            notes.append(CoverageNote("error", preview.blocked_reason))
        else:
            notes += [
                CoverageNote(
                    "error",
                    f"This tenant's .env does not define {name}, which the new compose file "
                    "needs; the upgrade is blocked until it is added.",
                )
                for name in coverage.required_missing
            ]
    else:
        notes += [
            CoverageNote(
                "warning",
                f"The rendered .env does not define {name}, which the new compose file needs: "
                f"template set {preview.template_set.name} is incomplete.",
            )
            for name in coverage.required_missing
        ]
    if coverage.defaulted_missing:
        whose = "This tenant's .env" if instance.is_registered else "The rendered .env"
        notes.append(
            CoverageNote(
                "info",
                f"{whose} does not set {', '.join(coverage.defaulted_missing)}; "
                "compose will use the defaults written in the compose file.",
            )
        )
    if not coverage.required_missing:
        whose = "This tenant's .env" if instance.is_registered else "The rendered .env"
        notes.insert(0, CoverageNote("info", f"{whose} defines every variable the new compose file needs."))
    if preview.secrets_to_generate:
        names = ", ".join(preview.secrets_to_generate)
        notes.append(
            CoverageNote(
                "info",
                f"Will be generated: {names}. This instance has no value yet; the "
                "preview shows a placeholder, and the upgrade generates a strong random "
                "value (stored encrypted, audited) before it writes the files.",
            )
        )
    return notes


def instance_render_for(*, instance: Instance, user, release=None):
    """A render as `user` may see it: secret values only with reveal_secrets, and then audited."""
    reveal = user_may_reveal_secrets(user)
    shown = instance_render_shown(instance=instance, release=release, reveal_secrets=reveal)
    if reveal:  # who saw secret values, and when, is worth a line in the audit log
        audit_log(
            user=user,
            obj=instance,
            action="changed",
            message=f"Viewed a render of release {shown.release} with secret values revealed.",
        )
    return shown
