"""Changes that decide where commands run: who may make them, and what they must wait for.

- A node's driver and SSH key path are settings of the *panel host* (the local driver runs commands as
  the panel's own user; a key path names a file the panel can read): superusers only.
- Moving an instance to another node, or changing its install directory, upgrade script or compose
  project, changes what a full upgrade or a restore runs where: `instances.relocate_instance`, never while an operation
  holds the instance's lock, and audited old → new.

`user` None is the panel itself (management commands, tests), which may do anything.
"""

from ccp.errors import Conflict, Forbidden

from .models import Instance, Node
from .operations.locks import describe
from .operations.models import InstanceLock

NODE_PANEL_HOST_FIELDS = ("driver", "ssh_key_path")
# Where an existing node's commands run, and where its images come from: changing them moves every instance
# on it (and every node that takes images from it) as surely as changing the instances' node would.
NODE_WHERE_FIELDS = ("address", "ssh_port", "ssh_user", "image_source")
# compose_project too: it decides which containers on the node an upgrade or a restore replaces (a stack CCP
# does not manage, such as the node's front proxy, could otherwise be taken over by naming its project).
INSTANCE_PRIVILEGED_FIELDS = ("node", "install_dir", "upgrade_script", "compose_project")
RELOCATE_PERMISSION = "instances.relocate_instance"


def _changes(obj, old, fields: tuple[str, ...]) -> list[str]:
    """'field: old → new' for each of `fields` that differs from the stored row (`old`)."""
    changed = []
    for field in fields:
        before = _shown(old, field) if old is not None else ""
        after = _shown(obj, field)
        if before != after:
            changed.append(f"{field}: {before or '(empty)'} → {after or '(empty)'}")
    return changed


def _shown(obj, field: str) -> str:
    if field in ("node", "image_source"):
        return str(getattr(obj, field)) if getattr(obj, field + "_id") else ""
    if field == "compose_project":  # empty means the slug (Instance.clean)
        return obj.compose_project or obj.slug
    return str(getattr(obj, field) or "")


def node_check_panel_host_fields(*, node: Node, user) -> str:
    """Refuse a non-superuser who sets the local driver or a key path, or changes either.
    Returns the change as 'field: old → new; …' ('' when none) for the audit log."""
    old = Node.objects.filter(pk=node.pk).first() if node.pk else None
    if old is None:  # a new node: only a non-default value is a panel-host setting
        old = Node(driver=Node._meta.get_field("driver").default, ssh_key_path="")
    changed = _changes(node, old, NODE_PANEL_HOST_FIELDS)
    if changed and user is not None and not user.is_superuser:
        names = ", ".join(sorted({c.split(":")[0] for c in changed}))
        raise Forbidden(
            f"Only a superuser may set {names}: the driver and the SSH key path are settings of the "
            'panel host (README "Security model").'
        )
    return "; ".join(changed)


def node_check_where_change(*, node: Node, user) -> str:
    """For an existing node: refuse a change of its address, port, user or image source by a user without
    `instances.relocate_instance` (an operator could otherwise point a node at a host they control, re-pin
    its key, and have the tenants' rendered secrets written there). Returns the change for the audit log."""
    if node.pk is None:
        return ""
    old = Node.objects.select_related("image_source").filter(pk=node.pk).first()
    changed = _changes(node, old, NODE_WHERE_FIELDS)
    if changed and user is not None and not user.has_perm(RELOCATE_PERMISSION):
        names = ", ".join(c.split(":")[0] for c in changed)
        raise Forbidden(
            f"Changing {names} of a node needs the {RELOCATE_PERMISSION} permission: it moves every "
            "instance on the node to wherever the node then points."
        )
    return "; ".join(changed)


def instance_check_privileged_change(*, instance: Instance, user) -> str:
    """For an existing instance: refuse a move (node, install_dir, upgrade_script) by a user without
    `instances.relocate_instance`, or while an operation holds the lock. Returns the change for the audit log."""
    if instance.pk is None:
        return ""
    old = Instance.objects.select_related("node").filter(pk=instance.pk).first()
    changed = _changes(instance, old, INSTANCE_PRIVILEGED_FIELDS)
    if not changed:
        return ""
    if user is not None and not user.has_perm(RELOCATE_PERMISSION):
        names = ", ".join(c.split(":")[0] for c in changed)
        raise Forbidden(
            f"Changing {names} of an instance needs the {RELOCATE_PERMISSION} permission: it decides "
            "where upgrades and restores run."
        )
    holder = InstanceLock.objects.select_for_update().filter(instance_id=instance.pk).first()
    if holder is not None:
        raise Conflict(
            f"{instance} is busy: {describe(holder)} is running. Its node, install directory and "
            "upgrade script cannot change until it finishes."
        )
    return "; ".join(changed)
