"""The nightly drift report on real SSH nodes: a file changed by hand on one node's instance is found,
nothing on the others; the notification goes out once per new drift (a real worker and webhook)."""

import hashlib
import time
from pathlib import Path

import pytest
from celery.contrib.testing.worker import start_worker
from django.apps import apps as django_apps
from django_celery_beat.models import PeriodicTask

from ccp.celery import app
from instances.drift.choices import DriftState
from instances.drift.models import InstanceDrift
from instances.drift.schedule import DRIFT_REPORT_TASK, SCHEDULE_NAME, ensure_drift_schedule
from instances.drift.services import drift_report_run
from instances.drivers import close_all, driver_for
from instances.notifications.choices import DeliveryStatus, NotificationEvent
from instances.notifications.models import NotificationDelivery, NotificationTarget
from instances.notifications.services import notification_target_save
from tests.notifications.receivers import Webhook, free_port, wait_for

from .helpers import install

pytestmark = [pytest.mark.testbed, pytest.mark.django_db(transaction=True)]


def ssh_node_row(make_node, sshd):
    node = make_node(
        name=f"ssh-{sshd.host.replace('.', '-')}-{sshd.port}",
        driver="ssh",
        address=sshd.host,
        ssh_port=sshd.port,
        ssh_user=sshd.user,
    )
    node.set_private_key(sshd.client_key)
    node.save()
    return node


@pytest.fixture
def drift_fleet(ssh_node, second_ssh_node, make_node, make_tenant, node_workdir_factory, testbed_release):
    """Two tenants on each of two SSH nodes, installed as a finished upgrade leaves them; the first runs
    the release by its observed version, the others the fleet default."""
    tenants = []
    for sshd in (ssh_node, second_ssh_node):
        node = ssh_node_row(make_node, sshd)
        driver = driver_for(node)
        for n in range(2):
            tenant = make_tenant(node=node, install_dir=str(node_workdir_factory())).instance
            install(tenant, driver=driver)
            if n == 0:
                tenant.observed_version = testbed_release.version
                tenant.save(update_fields=["observed_version"])
            tenants.append(tenant)
    yield tenants
    close_all()


@pytest.fixture
def drift_hook():
    hook = Webhook(port=free_port()).start()
    notification_target_save(
        target=NotificationTarget(name="drift", events=[NotificationEvent.INSTANCE_DRIFTED]), url=hook.url("/drift")
    )
    yield hook
    hook.stop()


def tree_digest(path: str) -> str:
    """Content and mtime of every file under an install directory: a report must change neither."""
    digest = hashlib.sha256()
    for file in sorted(Path(path).rglob("*")):
        if file.is_file():
            digest.update(f"{file}:{file.stat().st_mtime_ns}:".encode() + file.read_bytes())
    return digest.hexdigest()


def states(report) -> dict[str, str]:
    return dict(report.instances.values_list("instance__slug", "state"))


def test_the_report_finds_a_hand_edit_on_one_node_and_notifies_each_new_drift_once(
    drift_fleet, drift_hook, make_node, make_tenant, client, superuser, api
):
    edited, *clean = drift_fleet
    gone = make_tenant(
        node=make_node(driver="ssh", address="127.0.0.1", ssh_port=free_port()), install_dir="/nope"
    ).instance
    app_conf = Path(edited.install_dir) / "configs" / "app.conf"
    app_conf.write_text(app_conf.read_text() + "# edited by hand\n")

    with start_worker(app, pool="solo", concurrency=1, perform_ping_check=False, shutdown_timeout=60):
        first = drift_report_run()
        assert states(first) == {
            edited.slug: DriftState.DRIFTED,
            **{t.slug: DriftState.IN_SYNC for t in clean},
            gone.slug: DriftState.UNREACHABLE,
        }
        row = first.instances.get(instance=edited)
        assert row.files == [{"path": "configs/app.conf", "status": "changed", "kind": row.files[0]["kind"]}]
        assert row.changed and row.release_version == "v1.0.0" and row.kind in ("values-only", "structural")
        assert (first.instance_count, first.drifted_count, first.unreachable_count) == (5, 1, 1)
        wait_for(lambda: drift_hook.received, what="the drift notification")

        second = drift_report_run()  # nothing changed: no second message
        assert states(second) == states(first) and not second.instances.get(instance=edited).changed

        app_conf.write_text(app_conf.read_text() + "# and edited again\n")
        before = {t.slug: tree_digest(t.install_dir) for t in drift_fleet}
        third = drift_report_run()
        assert {
            t.slug: tree_digest(t.install_dir) for t in drift_fleet
        } == before  # reads never write  # the drift changed: one more message
        assert third.instances.get(instance=edited).changed
        wait_for(lambda: len(drift_hook.received) >= 2, what="the second drift notification")
        time.sleep(1.5)

    titles = [body["title"] for body in drift_hook.messages()]
    assert titles == [f"{edited} has drifted from release v1.0.0"] * 2
    assert "configs/app.conf" in drift_hook.received[0][1]["message"]
    assert set(NotificationDelivery.objects.values_list("status", flat=True)) == {DeliveryStatus.SENT}

    client.force_login(superuser)
    listed = client.get("/admin/instances/instance/?drift=drifted").content.decode()
    assert edited.slug in listed and all(t.slug not in listed for t in clean)
    dashboard = client.get("/admin/fleet/").content.decode()
    assert "Drift" in dashboard and edited.slug in dashboard and "configs/app.conf" in dashboard
    answer = api(superuser).get("/api/v1/instances/?drift=drifted").json()
    assert [(i["slug"], i["drift"]["state"]) for i in answer["results"]] == [(edited.slug, "drifted")]
    assert [f["path"] for f in answer["results"][0]["drift"]["files"]] == ["configs/app.conf"]
    unreachable = api(superuser).get(f"/api/v1/instances/{gone.slug}/").json()["drift"]
    assert unreachable == {"state": "unreachable", "kind": "", "files": []}


def test_the_migration_creates_the_nightly_drift_schedule():
    ensure_drift_schedule(django_apps)  # a transactional test may have flushed the migration's row
    ensure_drift_schedule(django_apps)  # idempotent: staff edits are never overwritten
    task = PeriodicTask.objects.get(name=SCHEDULE_NAME)
    assert task.task == DRIFT_REPORT_TASK and task.enabled and (task.crontab.hour, task.crontab.minute) == ("4", "15")
    assert InstanceDrift.objects.count() == 0
