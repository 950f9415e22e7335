"""Celery tasks of the instances app: thin adapters that fetch by id and call one service."""

import logging

from celery import shared_task
from celery.signals import worker_ready

from ccp.errors import CCPError
from instances.backups.tasks import *  # noqa: F401,F403 - registers the backup tasks with Celery
from instances.drift.tasks import *  # noqa: F401,F403 - the drift report's task
from instances.notifications.tasks import *  # noqa: F401,F403 - the notification delivery task

from .drivers import driver_for
from .health import instance_check_health
from .models import Instance, Node
from .node_checks import node_check
from .operations.node_lock import node_lock_break
from .operations.reconcile import reconcile_stale_locks
from .preview_runs import preview_run_execute
from .services import instance_record_observation

log = logging.getLogger(__name__)


@shared_task(name="instances.tasks.node_check_task")
def node_check_task(node_id: int) -> dict:
    """Check one node; the outcome is recorded on the node and returned for the caller to observe."""
    node = Node.objects.get(pk=node_id)
    try:
        node = node_check(node=node)
    except CCPError as exc:
        return {"node": node.name, "ok": False, "error": exc.message}
    return {"node": node.name, "ok": True, "docker": node.docker_version, "compose": node.compose_version}


@shared_task(name="instances.tasks.instance_check_health_task")
def instance_check_health_task(instance_id: int) -> dict:
    instance = Instance.objects.select_related("node").get(pk=instance_id)
    try:
        return instance_check_health(instance=instance)
    except Exception as exc:  # noqa: BLE001 - whatever stopped the check is said on the instance's page
        message = exc.message if isinstance(exc, CCPError) else f"{type(exc).__name__}: {exc}"
        log.exception("Health check of %s could not run", instance.slug)
        instance_record_observation(instance=instance, healthy=None, error=f"The health check could not run: {message}")
        return {"instance": instance.slug, "healthy": False, "error": message}


@shared_task(name="instances.tasks.preview_run_task")
def preview_run_task(run_id: int) -> str:
    return preview_run_execute(run_id=run_id)


@shared_task(name="instances.tasks.reconcile_task")
def reconcile_task() -> list[str]:
    return reconcile_stale_locks()


@shared_task(name="instances.tasks.node_lock_break_task")
def node_lock_break_task(instance_id: int, kind: str, operation_id: int) -> str:
    """Queued by the reconciler when it closed an operation whose worker died: the evidence is the result."""
    instance = Instance.objects.select_related("node").get(pk=instance_id)
    try:
        driver = driver_for(instance.node)
    except CCPError as exc:
        return f"{instance}: could not reach the node to check its lock: {exc.message}"
    return node_lock_break(
        driver=driver,
        install_dir=instance.install_dir,
        kind=kind,
        operation_id=operation_id,
        reason="its worker stopped and the reconciler closed the operation",
    )


@worker_ready.connect
def _reconcile_on_start(sender=None, **kwargs) -> None:
    # A worker that starts may be the one that replaced a killed worker: pick up its orphans now
    # rather than at the next beat tick.
    sender.app.send_task("instances.tasks.reconcile_task")
