"""System checks (`manage.py check`, run by every management command and by the worker at start):
a malformed CCP_ENCRYPTION_KEYS stops the panel at start-up, not at the first secret it encrypts."""

from django.conf import settings
from django.core.checks import Error, register

from . import secrets


@register()
def encryption_keys_check(app_configs=None, **kwargs) -> list[Error]:
    keys = list(getattr(settings, "CCP_ENCRYPTION_KEYS", []) or [])
    if not keys:
        return [
            Error(
                "CCP_ENCRYPTION_KEYS is empty.",
                hint="Set it to one or more comma-separated Fernet keys.",
                id="ccp.E001",
            )
        ]
    bad = secrets.invalid_keys(keys)
    if bad:
        positions = ", ".join(str(n) for n in bad)
        return [
            Error(
                f"CCP_ENCRYPTION_KEYS holds a value that is not a Fernet key (key number {positions}).",
                hint='Make one with: python -c "from cryptography.fernet import Fernet; '
                'print(Fernet.generate_key().decode())"',
                id="ccp.E002",
            )
        ]
    return []
