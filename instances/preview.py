"""Preview of a release render against the files on the node: the diff, env coverage and preview hash.

An operator approves exactly one preview (its hash); a release upgrade re-computes it and refuses to
write anything when the hash differs.
"""

import posixpath
from dataclasses import dataclass

from ccp.errors import CCPError
from templates_engine import Coverage, Preview, RenderedFile, TemplateSet, env_coverage, parse_env, preview_render
from templates_engine import render as render_set

from .context import default_release, release_named, render_context, template_set_named
from .drivers import driver_for
from .node_files import read_files
from .services import instance_fill_secrets
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
            return (f"This tenant has no .env file ({env_file} on node {self.instance.node}), and the new compose "
                    f"file needs {missing}; the upgrade to {self.release} is blocked until the file exists and "
                    "defines them.")
        them = "it is" if len(self.coverage.required_missing) == 1 else "they are"
        return (f"This tenant's .env does not define {missing}, which the new compose file needs; the upgrade to "
                f"{self.release} is blocked until {them} added to {env_file} on node {self.instance.node}.")

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


@engine_errors()
def instance_render(*, instance, release=None) -> tuple[object, TemplateSet, dict[str, RenderedFile]]:
    release = release_or_default(release)
    template_set = template_set_named(release.template_set)
    if instance_fill_secrets(instance=instance, release=release):  # a release set may need new secrets
        instance.save(update_fields=["secrets_encrypted"])
    files = render_set(template_set, render_context(instance, release), include_env=not instance.is_registered)
    return release, template_set, files


@engine_errors()
def instance_preview(*, instance, release=None, driver=None) -> InstancePreview:
    """Render for `release` and compare with the node's files (read through the driver)."""
    release, template_set, files = instance_render(instance=instance, release=release)
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
    return InstancePreview(instance=instance, release=release, template_set=template_set, files=files,
                           actual=actual, preview=preview, coverage=coverage, env_text=env_text,
                           env_found=env_bytes is not None)


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
