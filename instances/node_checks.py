"""Node check and host-key re-pinning: the two operations on a node itself."""

import logging

from django.db import transaction
from django.utils import timezone

from ccp.audit import audit_log
from ccp.errors import CCPError, Conflict

from .drivers import driver_for
from .drivers.factory import client_key_text
from .drivers.pool import drop_connections
from .drivers.ssh_connect import Endpoint, load_client_key, presented_host_key
from .models import Node
from .node_queries import docker_versions, free_disk_bytes

log = logging.getLogger(__name__)


def node_check(*, node: Node, user=None) -> Node:
    """Connect (pinning the host key on first contact) and record docker/compose versions and free disk.

    A failure is recorded on the node with its reason and re-raised as the readable error it is.
    """
    try:
        facts = _gather_facts(node)
    except CCPError as exc:
        Node.objects.filter(pk=node.pk).update(check_ok=False, check_error=exc.message, checked_at=timezone.now())
        node.refresh_from_db()
        raise
    Node.objects.filter(pk=node.pk).update(check_ok=True, check_error="", checked_at=timezone.now(), **facts)
    node.refresh_from_db()
    audit_log(user=user, obj=node, action="changed", message="Checked the node.")
    return node


def _gather_facts(node: Node) -> dict:
    # A check proves the node can be reached *now* with the pinned key: a new handshake, never a pooled
    # connection opened before the node's key changed.
    drop_connections(node.pk)
    driver = driver_for(node)
    docker, compose = docker_versions(driver, node)
    # the instance root may not exist yet: then measure the file system it will be on
    free = free_disk_bytes(driver, node.instance_root, fallback="/")
    return {"docker_version": docker[:64], "compose_version": compose[:64], "disk_free_bytes": free}


class FingerprintConfirmationNeeded(CCPError):
    """Re-pinning needs the fingerprint the operator checked out of band; this says which one the node shows."""

    http_status = 400

    def __init__(self, node: Node, presented: str):
        super().__init__(
            f"Node {node} presents the host key {presented}. Compare it with `ssh-keygen -lf "
            "/etc/ssh/ssh_host_ed25519_key.pub` on the node, then confirm it by sending it as the "
            "expected fingerprint."
        )
        self.presented_fingerprint = presented


def node_presented_fingerprint(*, node: Node) -> tuple[str, str, str]:
    """(type, base64, fingerprint) of the key the node presents now (handshake only, no login)."""
    label = f"{node.address}:{node.ssh_port}"
    # the key path is checked again here too: the handshake loads the key like any other use
    key = load_client_key(pkey_text=client_key_text(node), node=label)
    return presented_host_key(Endpoint(node.address, node.ssh_port, node.ssh_user, key))


@transaction.atomic
def node_repin_host_key(*, node: Node, user=None, expected_fingerprint: str = "") -> Node:
    """Trust the key the node presents now, if it is the one staff checked out of band (`expected_fingerprint`).

    Without an expected fingerprint nothing changes: FingerprintConfirmationNeeded names the presented
    one. A node presenting another key than the expected one is refused (Conflict). The old and new
    fingerprints go to the audit log, and every pooled connection to the node is dropped."""
    if node.driver == "local":
        raise CCPError(f"Node {node} uses the local driver: it has no host key to pin.")
    key_type, key_base64, presented = node_presented_fingerprint(node=node)
    expected = (expected_fingerprint or "").strip()
    if not expected:
        raise FingerprintConfirmationNeeded(node, presented)
    if expected != presented:
        raise Conflict(
            f"Node {node} presents the host key {presented}, not the expected {expected}; "
            "the pinned key was not changed."
        )
    old = node.host_key_fingerprint or "(none)"
    Node.objects.filter(pk=node.pk).update(
        host_key_type=key_type,
        host_key_base64=key_base64,
        host_key_fingerprint=presented,
        host_key_pinned_at=timezone.now(),
    )
    drop_connections(node.pk)
    node.refresh_from_db()
    driver_for(node).run(["true"], timeout=30, check=True)  # logs in with the new pin: refused if it changed again
    audit_log(user=user, obj=node, action="changed", message=f"Re-pinned the host key: {old} → {presented}.")
    log.warning("Node %s host key re-pinned by %s: %s -> %s", node, user, old, presented)
    return node
