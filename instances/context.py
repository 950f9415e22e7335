"""What a template set needs from the database: secret names, and the render context of an instance."""

from django.conf import settings


def secret_names(template_set: str | None = None) -> list[str]:
    """The secret names a template set's manifest declares; creating an instance generates exactly these."""
    from templates_engine.sets import load_template_set

    name = template_set or settings.CCP_DEFAULT_TEMPLATE_SET
    return list(load_template_set(settings.CCP_TEMPLATE_ROOT, name).secrets)
