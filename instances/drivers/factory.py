"""The driver for a `Node` row, with its host key pinned on first contact."""

from __future__ import annotations

import os
import stat

from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from instances.models import Node
from instances.notifications.choices import NotificationEvent
from instances.notifications.services import notify
from instances.validators import validate_local_driver_allowed, validate_ssh_key_path

from .base import Driver
from .errors import AuthenticationFailed, DriverError, HostKeyMismatch
from .local import LocalDriver
from .pool import pool
from .ssh import SSHDriver
from .ssh_connect import NewHostKeyCallback, fingerprint, load_client_key


def driver_for(node: Node) -> Driver:
    """A `LocalDriver`, or the pooled `SSHDriver` of the node (one connection shared by all steps).

    The panel-host settings are checked again here, at use, not only when the node was saved: a node
    saved before CCP_ALLOW_LOCAL_DRIVER was turned off, or a key path that became a symlink out of
    CCP_SSH_KEY_DIR, is refused before anything runs."""
    _check_panel_host_settings(node)
    if node.driver == "local":
        return LocalDriver(label=f"{node.name} (local)")
    label = f"{node.address}:{node.ssh_port}"
    key_text = client_key_text(node)
    client_key = load_client_key(pkey_text=key_text, node=label)
    pinned = (node.host_key_type, node.host_key_base64) if node.host_key_base64 else None

    def create() -> SSHDriver:
        return SSHDriver(
            node.address,
            node.ssh_port,
            node.ssh_user,
            pkey_text=key_text,
            pinned_host_key=pinned,
            on_new_host_key=_pin_on_first_contact(node),
            on_host_key_mismatch=_report_host_key_change(node),
        )

    # Every operation re-verifies the pin (free on a live connection): a pooled driver is reused only
    # if it trusts the key the node row pins now (re-pinned, or pin cleared for re-pinning elsewhere)
    # and its live connection presented exactly that key.
    def reuse(driver: SSHDriver) -> bool:
        live = driver.live_host_key()
        return driver.pinned_host_key == pinned and (live is None or live == pinned)

    key = (node.pk, node.address, node.ssh_port, node.ssh_user, client_key.fingerprint)
    return pool.get(key, create, reuse=reuse, group=node.pk)


def _check_panel_host_settings(node: Node) -> None:
    try:
        validate_local_driver_allowed(node.driver)
        validate_ssh_key_path(node.ssh_key_path if not node.has_private_key else "")
    except ValidationError as exc:
        raise DriverError(f"Node {node.name}: {' '.join(exc.messages)}", node=node.name) from None


def client_key_text(node: Node) -> str | None:
    """The panel's private key for `node`: the stored one, else the key file, read once. The file actually
    opened is what is checked against CCP_SSH_KEY_DIR (a link swapped after the name was checked is caught),
    and it must be a regular file (opening a FIFO would block the worker)."""
    _check_panel_host_settings(node)
    stored = node.get_private_key()
    if stored or not node.ssh_key_path:
        return stored or None
    path, label = node.ssh_key_path, f"{node.address}:{node.ssh_port}"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as error:
        raise AuthenticationFailed(
            f"The private key file {path} for node {label} cannot be used: {error.strerror}.", node=label
        ) from None
    with os.fdopen(fd, "rb") as key_file:
        try:
            validate_ssh_key_path(os.readlink(f"/proc/self/fd/{fd}"))
        except ValidationError as exc:
            raise DriverError(f"Node {node.name}: {' '.join(exc.messages)}", node=node.name) from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise AuthenticationFailed(
                f"The private key file {path} for node {label} is not a regular file.", node=label
            )
        return key_file.read(1024 * 1024).decode(errors="replace")


def _report_host_key_change(node: Node):
    """A refused host key is notified once per key the node presents (node.host_key_changed)."""

    def report(mismatch: HostKeyMismatch) -> None:
        notify(
            NotificationEvent.NODE_HOST_KEY_CHANGED,
            title=f"The host key of node {node.name} has changed",
            body=mismatch.message,
            url=reverse("admin:instances_node_change", args=[node.pk]),
            dedupe_key=f"host-key-{node.pk}-{mismatch.offered_fingerprint}",
        )

    return report


def _pin_on_first_contact(node: Node) -> NewHostKeyCallback:
    def pin(key_type: str, key_base64: str, key_fingerprint: str) -> None:
        fields = {
            "host_key_type": key_type,
            "host_key_base64": key_base64,
            "host_key_fingerprint": key_fingerprint,
            "host_key_pinned_at": timezone.now(),
        }
        # Only a node with no pinned key is pinned: two workers meeting a new node race here, and
        # the loser must compare with what the winner stored rather than overwrite it.
        if not Node.objects.filter(pk=node.pk, host_key_base64="").update(**fields):
            stored = Node.objects.values(
                "host_key_type", "host_key_base64", "host_key_pinned_at", "host_key_fingerprint"
            ).get(pk=node.pk)
            if stored["host_key_base64"] != key_base64:
                raise HostKeyMismatch(
                    node=f"{node.address}:{node.ssh_port}",
                    pinned_fingerprint=fingerprint(stored["host_key_base64"]),
                    offered_key=(key_type, key_base64),
                    offered_fingerprint=key_fingerprint,
                )
            fields = stored
        for name, value in fields.items():
            setattr(node, name, value)

    return pin
