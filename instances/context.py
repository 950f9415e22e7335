"""What a template set needs from the database: secret names, releases, and the render context of an instance.

The one place `instances` reads `upgrades.Release` (an edge the import-linter contract allows): the model
keeps its `upgrades` app label, so its admin URLs and permission names stay as operators know them.
"""

from django.conf import settings

from templates_engine.sets import load_template_set
from upgrades.models import Release

from .template_errors import engine_errors


@engine_errors()
def secret_names(template_set: str | None = None) -> list[str]:
    """The secret names a template set's manifest declares; creating an instance generates exactly these."""
    name = template_set or settings.CCP_DEFAULT_TEMPLATE_SET
    return list(load_template_set(settings.CCP_TEMPLATE_ROOT, name).secrets)


@engine_errors()
def template_set_named(name: str):
    return load_template_set(settings.CCP_TEMPLATE_ROOT, name)


def default_release():
    """The fleet default release, else the newest one (None when there is no release yet)."""
    return Release.objects.filter(is_default=True).first() or Release.objects.order_by("-created_at").first()


def release_named(version: str):
    """The release of that version, or None."""
    return Release.objects.filter(version=version).first()


def releases_newest_first():
    return Release.objects.order_by("-created_at")


def template_set_for(instance, release=None):
    release = release or default_release()
    return template_set_named(release.template_set if release else settings.CCP_DEFAULT_TEMPLATE_SET)


def render_context(instance, release, secret_values: dict[str, str] | None = None) -> dict:
    """The one render context of an instance for a release (see templates_engine for the keys).

    A release render uses the release's image tag: upgrading to a release means running its images.
    `secret_values` replaces the stored secrets (a preview passes placeholders for missing ones).
    """
    node = instance.node
    return {
        "instance": {
            "slug": instance.slug,
            "name": instance.name,
            "compose_project": instance.compose_project or instance.slug,
            "domain": instance.domain,
            "ports": dict(instance.ports),
            "profiles": instance.profile_list,
            "is_registered": instance.is_registered,
        },
        "image_tag": release.image_tag,
        "registry": release.image_registry.rstrip("/"),
        "secrets": instance.get_secrets() if secret_values is None else secret_values,
        "node": {"name": node.name, "address": node.address},
        "release": {"version": release.version},
    }
