"""Writes for nodes and instances. Admin, API and commands call these; they hold no logic of their own."""

import logging

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from ccp.audit import audit_log

from . import secrets, validators
from .choices import Health
from .context import template_set_for
from .drivers.pool import drop_connections
from .drivers.ssh_connect import validate_private_key
from .models import Instance, Node
from .privileged import instance_check_privileged_change, node_check_panel_host_fields, node_check_where_change

logger = logging.getLogger(__name__)


def instance_fill_secrets(*, instance: Instance, release=None) -> list[str]:
    """Give a panel-provisioned instance a strong random value for every secret its template set
    (the release's, else the fleet default release's) needs and it lacks; in memory, the caller saves
    (instance_save at creation, instance_generate_missing_secrets later). Never called by a read."""
    if instance.is_registered:
        return []
    current = instance.get_secrets()
    missing = [name for name in template_set_for(instance, release).secrets if not current.get(name)]
    if missing:
        current.update(secrets.generate_secrets(missing))
        instance.set_secrets(current)
    return missing


@transaction.atomic
def instance_generate_missing_secrets(*, instance: Instance, release=None, user=None, reason: str) -> list[str]:
    """The one place a provisioned instance's missing secrets are generated after it was created (a
    render or preview only shows "will be generated"): a release upgrade's step, or an operator's action.
    Returns the names generated; audited and logged by name, never by value. `instance` is updated too."""
    locked = Instance.objects.select_for_update().get(pk=instance.pk)  # two generators must not race
    names = instance_fill_secrets(instance=locked, release=release)
    instance.secrets_encrypted = locked.secrets_encrypted
    if not names:
        return []
    locked.save(update_fields=["secrets_encrypted"])
    message = f"Generated missing secret(s) {', '.join(names)} ({reason})."
    audit_log(user=user, obj=instance, action="changed", message=message)
    logger.info("instance %s: %s", instance.slug, message)
    return names


def instance_update_secrets(*, instance: Instance, values: dict[str, str]) -> None:
    """Set (or, with an empty value, remove) named secrets. Values are encrypted at once."""
    current = instance.get_secrets()
    bad = [name for name in values if not validators.SECRET_NAME_RE.match(str(name))]
    if bad:
        raise ValidationError(
            {
                "secrets": [
                    f"{name!r} is not a valid secret name: use upper-case letters, digits "
                    "and '_', not starting with a digit (an environment variable name)."
                    for name in bad
                ]
            }
        )
    for name, value in values.items():
        if value:
            current[name] = value
        else:
            current.pop(name, None)
    instance.set_secrets(current)


@transaction.atomic
def instance_save(
    *,
    instance: Instance,
    user=None,
    secret_values: dict[str, str] | None = None,
    changed_fields: list[str] | None = None,
    log_change: bool = True,
) -> Instance:
    """Validate and save an instance (new or changed), generating secrets for a new one.

    Moving it to another node or changing its install directory or upgrade script is privileged
    (`instances.relocate_instance`), refused while an operation runs on it, and audited old → new.
    `user` None is the panel itself (commands, tests); the admin passes log_change=False (it logs its own)."""
    created = instance.pk is None
    privileged = instance_check_privileged_change(instance=instance, user=user)
    if secret_values:
        instance_update_secrets(instance=instance, values=secret_values)
    if created:
        instance_fill_secrets(instance=instance)
    instance.full_clean()  # also defaults compose_project to the slug (Instance.clean)
    instance.save()
    if log_change:
        audit_log(
            user=user,
            obj=instance,
            action="added" if created else "changed",
            message="Added via API." if created else f"Changed {', '.join(changed_fields or [])} via API.",
        )
    if privileged:
        audit_log(user=user, obj=instance, action="changed", message="Privileged change: " + privileged)
    return instance


@transaction.atomic
def node_save(
    *,
    node: Node,
    user=None,
    private_key: str | None = None,
    changed_fields: list[str] | None = None,
    log_change: bool = True,
) -> Node:
    """Validate and save a node. The driver and the key path are panel-host settings: only a superuser
    (or the panel itself, `user` None) may set or change them; an existing node's address, port, user and
    image source need `instances.relocate_instance` and are audited old → new. A changed address, port, user, key or
    pinned host key drops the node's pooled SSH connections (see drivers.pool)."""
    created = node.pk is None
    panel_host = node_check_panel_host_fields(node=node, user=user)
    where = node_check_where_change(node=node, user=user)
    if private_key is not None:
        try:
            validate_private_key(private_key)
        except ValidationError as exc:
            raise ValidationError({"private_key": exc.messages}) from None
        node.set_private_key(private_key)
    node.full_clean()
    node.save()
    transaction.on_commit(lambda: drop_connections(node.pk))
    if log_change:
        audit_log(
            user=user,
            obj=node,
            action="added" if created else "changed",
            message="Added via API." if created else f"Changed {', '.join(changed_fields or [])} via API.",
        )
    if panel_host:
        audit_log(user=user, obj=node, action="changed", message="Panel-host setting: " + panel_host)
    if where:
        audit_log(user=user, obj=node, action="changed", message="Privileged change: " + where)
    return node


def instance_record_observation(
    *, instance: Instance, version: str | None = None, healthy: bool | None = None, error: str | None = None
) -> None:
    """What CCP saw on the node: the running version, whether it answered its health checks, and why not
    (`error`, a sentence; a healthy answer clears it)."""
    fields = []
    if error is not None or healthy:
        instance.health_error = error or ""
        fields.append("health_error")
    if healthy is None and error:  # the check could not run: health is not known
        instance.health, instance.health_checked_at = Health.UNKNOWN, timezone.now()
        fields += ["health", "health_checked_at"]
    if version is not None:
        instance.observed_version = version
        fields.append("observed_version")
    if healthy is not None:
        instance.health = Health.HEALTHY if healthy else Health.UNHEALTHY
        instance.health_checked_at = timezone.now()
        fields += ["health", "health_checked_at"]
    if fields:
        instance.save(update_fields=fields)
