"""Preview of a release render against the files on the node: the diff, env coverage and preview hash.

An operator approves exactly one preview (its hash); a release upgrade re-computes it and refuses to
write anything when the hash differs.

Reads never write: a render uses the instance's stored secrets, and a secret its template set needs that
does not exist yet renders as a fixed placeholder (`secrets.pending_placeholder`), listed as "will be
generated". The release upgrade generates it (an explicit, audited step) before it renders the files it
writes, and hashes those names' placeholders again, so the preview approved before matches its render.
"""

import posixpath
from dataclasses import dataclass, field, replace

from ccp.errors import CCPError
from templates_engine import Coverage, Preview, RenderedFile, TemplateSet, env_coverage, parse_env, preview_render
from templates_engine import render as render_set

from .context import default_release, release_named, render_context, template_set_named
from .drivers import driver_for
from .node_queries import read_files
from .secrets import pending_placeholder
from .template_errors import engine_errors


@dataclass
class InstancePreview:
    instance: object
    release: object
    template_set: TemplateSet
    files: dict[str, RenderedFile]
    actual: dict[str, bytes | None]
    preview: Preview
    coverage: Coverage
    env_text: str
    env_found: bool = True  # False: a registered tenant without a .env on the node
    secrets_to_generate: list[str] = field(default_factory=list)  # rendered as placeholders

    @property
    def preview_hash(self) -> str:
        return self.preview.preview_hash

    @property
    def blocked(self) -> bool:
        """A registered tenant whose own .env lacks a required variable: the upgrade is refused."""
        return self.instance.is_registered and self.coverage.blocked

    @property
    def blocked_reason(self) -> str:
        if not self.blocked:
            return ""
        missing = _names(self.coverage.required_missing)
        env_file = posixpath.join(self.instance.install_dir, self.template_set.env_file)
        if not self.env_found:
            return (
                f"This tenant has no .env file ({env_file} on node {self.instance.node}), and the new compose "
                f"file needs {missing}; the upgrade to {self.release} is blocked until the file exists and "
                "defines them."
            )
        them = "it is" if len(self.coverage.required_missing) == 1 else "they are"
        return (
            f"This tenant's .env does not define {missing}, which the new compose file needs; the upgrade to "
            f"{self.release} is blocked until {them} added to {env_file} on node {self.instance.node}."
        )

    @property
    def has_changes(self) -> bool:
        return self.preview.has_changes


def release_or_default(release=None):
    if isinstance(release, str):  # a version; an empty one means the default
        version, release = release.strip(), None
        if version:
            release = release_named(version)
            if release is None:
                raise CCPError(f"There is no release {version!r}.")
    release = release or default_release()
    if release is None:
        raise CCPError("There is no release yet: add one under Releases first.")
    return release


def missing_secrets(instance, template_set: TemplateSet) -> list[str]:
    """The secrets `template_set` needs that a provisioned instance does not have yet (a registered
    tenant keeps its own .env: the panel generates nothing for it)."""
    if instance.is_registered:
        return []
    stored = instance.get_secrets()
    return [name for name in template_set.secrets if not stored.get(name)]


def _secret_values(instance, template_set: TemplateSet, as_placeholder=()) -> dict[str, str]:
    values = instance.get_secrets()
    for name in [*missing_secrets(instance, template_set), *as_placeholder]:
        values[name] = pending_placeholder(name)
    return values


@engine_errors()
def instance_render(
    *, instance, release=None, as_placeholder=()
) -> tuple[object, TemplateSet, dict[str, RenderedFile]]:
    """Render `release` for `instance`; stores nothing. A missing secret (and each name in
    `as_placeholder`) renders as its placeholder."""
    release = release_or_default(release)
    template_set = template_set_named(release.template_set)
    context = render_context(instance, release, _secret_values(instance, template_set, as_placeholder))
    files = render_set(template_set, context, include_env=not instance.is_registered)
    return release, template_set, files


@engine_errors()
def instance_preview(*, instance, release=None, driver=None, generated=()) -> InstancePreview:
    """Render for `release` and compare with the node's files (read through the driver).

    `generated`: secret names the calling upgrade has just generated. Its files carry the real values,
    but its hash takes their placeholders, as the preview the operator approved did."""
    release, template_set, files = instance_render(instance=instance, release=release)
    to_generate = missing_secrets(instance, template_set)
    driver = driver or driver_for(instance.node)
    # Every file in one stream; a registered tenant's own .env too (coverage is checked against it).
    on_node = read_files(driver, instance.install_dir, sorted({*files, template_set.env_file}))
    actual = {path: on_node[path] for path in files}
    if template_set.env_file in files:
        env_bytes = files[template_set.env_file].content
    else:
        env_bytes = on_node[template_set.env_file]
    env_text = env_bytes.decode(errors="replace") if env_bytes is not None else ""
    compose_text = files[template_set.compose_file].content.decode()
    coverage = env_coverage(compose_text, parse_env(env_text), also_required=template_set.required_env)
    preview = preview_render(template_set, files, actual)
    if generated:
        _, _, approved_files = instance_render(instance=instance, release=release, as_placeholder=generated)
        preview = replace(preview, preview_hash=preview_render(template_set, approved_files, actual).preview_hash)
    return InstancePreview(
        instance=instance,
        release=release,
        template_set=template_set,
        files=files,
        actual=actual,
        preview=preview,
        coverage=coverage,
        env_text=env_text,
        env_found=env_bytes is not None,
        secrets_to_generate=to_generate,
    )


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
