"""Encryption at rest of the archives that hold tenant files, in the age format (pyrage, the Python
binding of the rage implementation): encrypted on the worker to the public keys in
CCP_BACKUP_AGE_RECIPIENTS, decrypted by restore and verify with the identity file only workers hold
(CCP_BACKUP_AGE_IDENTITY_FILE).

age encrypts in 64 KiB chunks (its STREAM construction); pyrage's encrypt_io/decrypt_io read from and
write to Python file objects as they go, so memory stays a few chunks whatever the archive size.
Decryption pushes into a writer while tarfile and the node's stdin pull from a reader: a thread and a
pipe join the two, again a few chunks at a time.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import BinaryIO

import pyrage
from django.conf import settings

from ccp.errors import CCPError


class EncryptionError(CCPError):
    pass


def recipients() -> list:
    """The configured recipients (public keys), or [] when backups are not encrypted."""
    found = []
    for text in settings.CCP_BACKUP_AGE_RECIPIENTS:
        try:
            found.append(pyrage.x25519.Recipient.from_str(text.strip()))
        except pyrage.RecipientError:
            raise EncryptionError(
                f"CCP_BACKUP_AGE_RECIPIENTS holds {text[:12]!r}…, which is not an age public key (age1…)."
            ) from None
    return found


def recipients_text() -> str:
    return ", ".join(text.strip() for text in settings.CCP_BACKUP_AGE_RECIPIENTS)


def identities() -> list:
    """The identities (private keys) of CCP_BACKUP_AGE_IDENTITY_FILE, as age-keygen writes them."""
    path = settings.CCP_BACKUP_AGE_IDENTITY_FILE
    if not path:
        raise EncryptionError(
            "This backup is encrypted and this worker has no identity to decrypt it: set "
            "CCP_BACKUP_AGE_IDENTITY_FILE on the workers to the age identity file whose public key "
            "the backup was encrypted to."
        )
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as error:
        raise EncryptionError(f"Cannot read the age identity file {path}: {error.strerror}.") from None
    found = []
    for line in lines:
        if line.strip() and not line.startswith("#"):
            try:
                found.append(pyrage.x25519.Identity.from_str(line.strip()))
            except pyrage.IdentityError:
                raise EncryptionError(f"{path} holds a line that is not an age identity (AGE-SECRET-KEY-1…).") from None
    if not found:
        raise EncryptionError(f"{path} holds no age identity.")
    return found


class _Reader:
    """Hands pyrage the source's bytes and keeps the source's own error (pyrage would wrap it)."""

    def __init__(self, source):
        self.source, self.error = source, None

    def read(self, size: int = -1) -> bytes:
        try:
            return self.source.read(size)
        except BaseException as error:
            self.error = error
            raise


class _Writer:
    def __init__(self, sink):
        self.sink, self.error = sink, None

    def write(self, data) -> int:
        try:
            self.sink.write(data)
        except BaseException as error:
            self.error = error
            raise
        return len(data)


def encrypt_stream(source, sink, to: list) -> None:
    """Read `source` to its end and write it, encrypted to `to`, into `sink`."""
    reader, writer = _Reader(source), _Writer(sink)
    try:
        pyrage.encrypt_io(reader, writer, to)
    except pyrage.EncryptError as error:
        if reader.error is not None:
            raise reader.error from None
        if writer.error is not None:
            raise writer.error from None
        raise EncryptionError(f"Encrypting the archive failed: {error}.") from None


class Decrypted:
    """A readable of the plaintext of an encrypted source (a thread decrypts into a pipe). Closing it
    stops the thread; `close()` raises what went wrong in the decryption, if anything did."""

    def __init__(self, source: BinaryIO, name: str, with_: list):
        self.name = name
        read_fd, write_fd = os.pipe()
        self._in = os.fdopen(read_fd, "rb")
        self._out = os.fdopen(write_fd, "wb", buffering=0)
        self._source, self._identities = _Reader(source), with_
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"decrypt {name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            pyrage.decrypt_io(self._source, _Writer(self._out), self._identities)
        except BaseException as error:  # noqa: BLE001 - reported to the reading thread
            self._error = self._source.error or error
        finally:
            try:
                self._out.close()
            except OSError:
                pass  # the reader closed its end first

    def read(self, size: int = -1) -> bytes:
        data = self._in.read(size)
        if not data:
            self._thread.join()
            self._raise()
        return data

    def readable(self) -> bool:
        return True

    def _raise(self) -> None:
        error = self._error
        if error is None:
            return
        if isinstance(error, CCPError):
            raise error
        if isinstance(error, pyrage.DecryptError) and "No matching keys" in str(error):
            raise EncryptionError(
                f"{self.name} cannot be decrypted with the identity in CCP_BACKUP_AGE_IDENTITY_FILE: it was "
                f"encrypted to another key."
            )
        raise EncryptionError(f"{self.name} cannot be decrypted: {error}.")

    def close(self) -> None:
        self._in.close()  # a writer blocked on a full pipe gets EPIPE and ends
        self._thread.join()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
