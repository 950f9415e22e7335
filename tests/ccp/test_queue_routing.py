"""Queues by node (CCP_NODE_QUEUES): a task that works on one node goes to that node's queue, and a real
worker that consumes only that queue runs it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from django_celery_results.models import TaskResult

from ccp.celery import app
from ccp.routing import NODE_OF_TASK
from instances.choices import BackupStatus, RestoreStatus
from instances.models import Backup, Node, Restore
from instances.tasks import node_check_task
from upgrades.models import Upgrade

REPO = Path(__file__).resolve().parents[2]


def routed_queue(task_name: str, object_id) -> str | None:
    """The queue Celery's own router picks for this task and argument (None: the default queue)."""
    options = app.amqp.router.route({}, task_name, args=[object_id], kwargs={})
    queue = options["queue"]
    return None if queue.name == app.conf.task_default_queue else queue.name


def test_every_routed_task_exists():
    """A task renamed or moved without updating ccp/routing.py would silently lose its routing."""
    app.loader.import_default_modules()
    assert sorted(set(NODE_OF_TASK) - set(app.tasks)) == []


@pytest.mark.django_db
def test_tasks_on_a_mapped_node_go_to_its_queue(settings, make_node, make_instance):
    east, other = make_node(name="east-1"), make_node(name="home-1")
    settings.CCP_NODE_QUEUES = {"east-1": "site-east"}
    objects = {}
    for node in (east, other):
        instance = make_instance(node=node)
        backup = Backup.objects.create(instance=instance, status=BackupStatus.PENDING)
        objects[node.name] = {
            "instances.Node": node,
            "instances.Instance": instance,
            "instances.Backup": backup,
            "instances.Restore": Restore.objects.create(instance=instance, backup=backup, status=RestoreStatus.PENDING),
            "upgrades.Upgrade": Upgrade.objects.create(instance=instance, mode="image_only", target_tag="v2"),
        }
    for task_name, (model, _) in NODE_OF_TASK.items():
        assert routed_queue(task_name, objects["east-1"][model].pk) == "site-east", task_name
        assert routed_queue(task_name, objects["home-1"][model].pk) is None, task_name
    # Fleet-wide tasks, unknown ids and an empty setting: the default queue.
    assert routed_queue("instances.backups.tasks.backup_all_scheduled_task", None) is None
    assert routed_queue("upgrades.tasks.reconcile_task", None) is None
    assert routed_queue("instances.tasks.node_check_task", 10**9) is None
    settings.CCP_NODE_QUEUES = {}
    assert routed_queue("instances.tasks.node_check_task", east.pk) is None


def _worker_env(settings) -> dict:
    db = settings.DATABASES["default"]
    if db["ENGINE"] == "django.db.backends.sqlite3":
        url = f"sqlite:///{db['NAME']}"
    else:
        url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    return {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "ccp.test_settings",
        "SECRET_KEY": settings.SECRET_KEY,
        "CCP_ENCRYPTION_KEYS": ",".join(settings.CCP_ENCRYPTION_KEYS),
    }


@pytest.mark.timeout(180)
def test_a_site_worker_runs_the_tasks_of_its_nodes(transactional_db, settings, tmp_path):
    queue = f"{settings.CELERY_TASK_DEFAULT_QUEUE}-site-east"
    settings.CCP_NODE_QUEUES = {"east-node": queue}
    # Port 1 of loopback refuses at once: the check runs, fails, and records that on the node.
    east = Node(name="east-node", address="127.0.0.1", ssh_port=1, driver="ssh")
    east.full_clean()
    east.save()
    log = tmp_path / "site-worker.log"
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "ccp",
            "worker",
            "--queues",
            queue,
            "--hostname",
            "site-east@%h",
            "--pool=threads",
            "--concurrency=2",
            "--loglevel=INFO",
            "--without-mingle",
            "--without-gossip",
        ],
        cwd=REPO,
        env=_worker_env(settings),
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        result = node_check_task.delay(east.pk)
        outcome = result.get(timeout=120)
        assert outcome["node"] == "east-node" and outcome["ok"] is False
        assert TaskResult.objects.get(task_id=result.id).worker.startswith("site-east@")
        east.refresh_from_db()
        assert east.checked_at is not None and east.check_ok is False and east.check_error
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]
