"""Hiding an instance's secret values from what the panel shows: API answers, admin pages, command output."""

import re
from collections.abc import Collection, Iterable

from templates_engine import EnvFileError, parse_env

REDACTED = "[redacted]"
# .env variables whose values are treated as secrets even when no template set declares them.
SECRET_NAME = re.compile(r"PASSWORD|PASSPHRASE|SECRET|TOKEN|PRIVATE_KEY|API_KEY|ACCESS_KEY", re.IGNORECASE)
# A value found only by its name must be this long to be redacted everywhere (`TOKEN_TTL=5` must not
# turn every 5 in a diff into [redacted]).
MIN_GUESSED_SECRET = 6


def secret_values(instance) -> list[str]:
    """The instance's decrypted secret values, longest first (so a secret containing another is hidden whole)."""
    return sorted({value for value in instance.get_secrets().values() if value}, key=len, reverse=True)


def env_secret_values(env_text: str, declared: Collection[str] = ()) -> list[str]:
    """Secret values in a .env file on a node: those of the `declared` names (a template set's secrets),
    and long enough values of names that look secret. These may differ from the panel's (an old value,
    a registered tenant's own); a preview must hide them too. An unreadable file yields nothing."""
    try:
        values = parse_env(env_text)
    except EnvFileError:
        return []
    found = {
        value
        for name, value in values.items()
        if value and (name in declared or (SECRET_NAME.search(name) and len(value) >= MIN_GUESSED_SECRET))
    }
    return sorted(found, key=len, reverse=True)


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every occurrence of each secret value replaced by `[redacted]`.

    Every non-empty value counts, however short: a preview must never show a secret, and a mangled
    line is the lesser harm. Pass `secret_values(instance)`, which is sorted longest first.
    """
    for value in secrets:
        if value:
            text = text.replace(value, REDACTED)
    return text


def redact_bytes(content: bytes, secrets: Iterable[str]) -> bytes:
    """`redact` for file contents, byte for byte, so binary files stay intact apart from the secrets."""
    marker = REDACTED.encode()
    for value in secrets:
        if value:
            content = content.replace(value.encode(), marker)
    return content
