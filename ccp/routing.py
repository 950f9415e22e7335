"""Celery routing by node (README "Queues: workers near their nodes"): a task that works on one node goes
to the queue CCP_NODE_QUEUES names for that node, so a site can run its own workers close to its nodes.

A task with no entry here (scheduled backups of the whole fleet, previews of many instances, the
reconciler), or whose node has no queue, goes to the default queue. Routing only decides which worker
picks a task up; the database lock on the instance stays the one guard against two operations at once.
"""

from django.apps import apps
from django.conf import settings

# task name -> (the model whose id is the task's one argument, the lookup from it to its node's name).
# Models are named, not imported: this module is loaded by Celery's router, below the apps it routes.
NODE_OF_TASK = {
    "instances.tasks.node_check_task": ("instances.Node", "name"),
    "instances.tasks.instance_check_health_task": ("instances.Instance", "node__name"),
    "instances.backups.tasks.backup_run_task": ("instances.Backup", "instance__node__name"),
    "instances.backups.tasks.backup_restore_task": ("instances.Restore", "instance__node__name"),
    "upgrades.tasks.upgrade_run_task": ("upgrades.Upgrade", "instance__node__name"),
    "upgrades.tasks.upgrade_resume_task": ("upgrades.Upgrade", "instance__node__name"),
    "upgrades.tasks.upgrade_recover_task": ("upgrades.Upgrade", "instance__node__name"),
}


def node_queue(task_name: str, object_id) -> str | None:
    """The queue CCP_NODE_QUEUES names for the node the task works on, or None (the default queue)."""
    if not settings.CCP_NODE_QUEUES or task_name not in NODE_OF_TASK or object_id is None:
        return None
    model, lookup = NODE_OF_TASK[task_name]
    node = apps.get_model(model).objects.filter(pk=object_id).values_list(lookup, flat=True).first()
    return settings.CCP_NODE_QUEUES.get(node)


def route_by_node(name, args, kwargs, options, task=None, **kw):
    """Celery router (CELERY_TASK_ROUTES). Every node task takes its object's id as its one argument."""
    object_id = args[0] if args else next(iter((kwargs or {}).values()), None)
    queue = node_queue(name, object_id)
    return {"queue": queue} if queue else None
