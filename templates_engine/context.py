"""An example render context: complete, deterministic, with placeholder values.

Used by the drift check (which must render the compose template without a real instance) and by tests.
Its shape is the contract documented in the package docstring.
"""

from collections.abc import Iterable
from typing import Any

from .sets import TemplateSet

PLACEHOLDER_REGISTRY = "registry.invalid"
PLACEHOLDER_TAG = "v0.0.0-placeholder"


def example_context(
    template_set: TemplateSet,
    *,
    slug: str = "example",
    port_base: int = 20000,
    profiles: Iterable[str] | None = None,
    registry: str = PLACEHOLDER_REGISTRY,
    image_tag: str = PLACEHOLDER_TAG,
) -> dict[str, Any]:
    """A context for `template_set`: one port per manifest port from `port_base` up, every secret set,
    and all optional profiles enabled unless `profiles` says otherwise.
    """
    return {
        "instance": {
            "slug": slug,
            "name": slug.replace("-", " ").title(),
            "compose_project": f"ccp-{slug}",
            "domain": f"{slug}.example.org",
            "ports": {name: port_base + index for index, name in enumerate(template_set.ports)},
            "profiles": list(template_set.profiles if profiles is None else profiles),
            "is_registered": False,
        },
        "image_tag": image_tag,
        "registry": registry,
        "secrets": {name: f"example-{name.lower().replace('_', '-')}-0123456789" for name in template_set.secrets},
        "node": {"name": "example-node", "address": "127.0.0.1"},
        "release": {"version": image_tag},
    }
