"""Node check and host-key re-pinning: the two operations on a node itself."""

import logging

from django.db import transaction
from django.utils import timezone

from ccp.errors import CCPError

from .drivers import driver_for
from .models import Node
from .node_commands import docker_versions, free_disk_bytes
from .services import audit_log

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
    driver = driver_for(node)
    docker, compose = docker_versions(driver, node)
    # the instance root may not exist yet: then measure the file system it will be on
    free = free_disk_bytes(driver, node.instance_root, fallback="/")
    return {"docker_version": docker[:64], "compose_version": compose[:64], "disk_free_bytes": free}


@transaction.atomic
def node_repin_host_key(*, node: Node, user=None) -> Node:
    """Trust the key the node presents now (after staff checked it out of band) and record the change."""
    old = node.host_key_fingerprint or "(none)"
    Node.objects.filter(pk=node.pk).update(host_key_type="", host_key_base64="", host_key_fingerprint="",
                                           host_key_pinned_at=None)
    node.refresh_from_db()
    driver_for(node).run(["true"], timeout=30, check=True)  # first contact again: pins the presented key
    node.refresh_from_db()
    audit_log(user=user, obj=node, action="changed",
              message=f"Re-pinned the host key: {old} → {node.host_key_fingerprint}.")
    log.warning("Node %s host key re-pinned by %s: %s -> %s", node, user, old, node.host_key_fingerprint)
    return node
