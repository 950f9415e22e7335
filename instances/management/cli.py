"""What the instance commands share: finding an instance by slug, and turning errors into one line."""

from django.core.management.base import CommandError

from instances.models import Instance
from instances.redaction import redact, secret_values

# Exit code of a command that could not do its job (unknown slug, unreachable node, bad template).
ERROR_EXIT = 2


def fail(message: str, *, instance: Instance | None = None) -> CommandError:
    """A CommandError with a one-line message (secret values of `instance` redacted) and exit code 2.
    `manage.py` prints it on stderr without a traceback."""
    if instance is not None:
        message = redact(message, secret_values(instance))
    return CommandError(" ".join(message.split()), returncode=ERROR_EXIT)


def instance_by_slug(slug: str) -> Instance:
    try:
        return Instance.objects.select_related("node").get(slug=slug)
    except Instance.DoesNotExist:
        raise fail(f"There is no instance {slug!r}.") from None
