"""Secrets at rest: MultiFernet over CCP_ENCRYPTION_KEYS (the first key encrypts, every key decrypts).

Values are encrypted before they reach the database and decrypted only where a driver or a render
needs them. Nothing here logs or returns a value to a user.
"""

import json
import secrets as _random
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

from ccp.errors import CCPError


@lru_cache(maxsize=4)
def _multifernet(keys: tuple[str, ...]) -> MultiFernet:
    try:
        return MultiFernet([Fernet(k.encode()) for k in keys])
    except (ValueError, TypeError) as exc:
        raise CCPError("CCP_ENCRYPTION_KEYS holds a value that is not a Fernet key.") from exc


def invalid_keys(keys: list[str]) -> list[int]:
    """1-based positions of the values in `keys` that are not Fernet keys (never the values themselves)."""
    bad = []
    for number, key in enumerate(keys, start=1):
        try:
            Fernet(key.encode())
        except (ValueError, TypeError):
            bad.append(number)
    return bad


def fernet() -> MultiFernet:
    if not settings.CCP_ENCRYPTION_KEYS:
        raise CCPError("CCP_ENCRYPTION_KEYS is empty.")
    return _multifernet(tuple(settings.CCP_ENCRYPTION_KEYS))


def encrypt_text(value: str) -> str:
    return fernet().encrypt(value.encode()).decode() if value else ""


def decrypt_text(token: str) -> str:
    if not token:
        return ""
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise CCPError(
            "A stored secret cannot be decrypted with CCP_ENCRYPTION_KEYS "
            "(was a key removed before rotate_encryption_key ran?)."
        ) from exc


def encrypt_json(value: dict) -> str:
    return encrypt_text(json.dumps(value, sort_keys=True)) if value else ""


def decrypt_json(token: str) -> dict:
    return json.loads(decrypt_text(token)) if token else {}


def rotate_token(token: str) -> str:
    """Re-encrypt a token under the first key (it may have been made with any configured key)."""
    return fernet().rotate(token.encode()).decode() if token else ""


def generate_secret(length: int = 40) -> str:
    """A strong random value, safe inside .env files and URLs (letters and digits only)."""
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return "".join(_random.choice(alphabet) for _ in range(length))


def generate_secrets(names) -> dict[str, str]:
    return {name: generate_secret() for name in names}


def pending_placeholder(name: str) -> str:
    """What a render shows for a secret that does not exist yet. Fixed, so a preview's hash is stable and
    matches the upgrade that generates the value (see instances.preview); safe unquoted in a .env."""
    return f"__CCP_WILL_BE_GENERATED_{name}__"
