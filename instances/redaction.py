"""Hiding an instance's secret values from what the panel shows: API answers, admin pages, command
output, upgrade steps. `redact` is the one function that does it, `REDACTED` the one marker (defined
by templates_engine, which writes it into the env lines of a preview)."""

import re
from collections.abc import Collection, Iterable
from typing import TypeVar

from templates_engine import REDACTED, EnvFileError, parse_env

__all__ = ["REDACTED", "env_secret_values", "redact", "secret_values"]
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


Content = TypeVar("Content", str, bytes)


def redact(content: Content, secrets: Iterable[str]) -> Content:
    """`content` with every occurrence of each secret value replaced by `[redacted]`: text, or bytes
    (file contents, replaced byte for byte so binary files stay intact apart from the secrets).

    Every non-empty value counts, however short: a preview must never show a secret, and a mangled
    line is the lesser harm. Longest first, so a secret that contains another is hidden whole.
    """
    ordered = sorted({value for value in secrets if value}, key=len, reverse=True)
    if isinstance(content, bytes):
        marker = REDACTED.encode()
        for value in ordered:
            content = content.replace(value.encode(), marker)
        return content
    for value in ordered:
        content = content.replace(value, REDACTED)
    return content
