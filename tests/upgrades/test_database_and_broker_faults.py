"""Upgrades survive faults of the panel's own infrastructure (issue 16): a terminated heartbeat
connection, a restart and a 10-second stop of PostgreSQL, a broker stopped mid-operation.

The panel here — this process and the Celery worker it runs in a thread — uses a PostgreSQL cluster
and a Redis of the test's own (tests/testbed/services.py), which the tests terminate, restart and stop;
the tenant is real (sshd, docker, the loopback registry). The fault is injected from the upgrade's
`after_up` hook, i.e. while the upgrade runs, right after its `up -d --wait`."""

import threading
import time

import pytest
from celery.contrib.testing.worker import start_worker

from ccp.celery import app
from ccp.errors import Conflict
from instances.operations.db import db_retry
from instances.operations.models import InstanceLock
from instances.operations.reconcile import reconcile_stale_locks
from upgrades.choices import StepStatus, UpgradeMode, UpgradeStatus
from upgrades.models import Upgrade
from upgrades.services import upgrade_request

from .helpers import quick

pytestmark = [pytest.mark.testbed, pytest.mark.django_db(transaction=True)]

HEARTBEAT_UPDATE = """query LIKE 'UPDATE "upgrades_instancelock" SET "heartbeat_at"%'"""


@pytest.fixture
def tenant(private_panel, make_tenant):
    """A tenant at v1, its rows in the private database (private_panel comes first)."""
    return make_tenant()


@pytest.fixture
def worker(private_panel, tenant):
    """A real Celery worker (a thread of this process) on the private broker and database."""
    with start_worker(app, pool="solo", concurrency=1, perform_ping_check=False, shutdown_timeout=60) as worker:
        yield worker


def wait_final(upgrade: Upgrade, timeout: float = 180) -> Upgrade:
    """Like helpers.wait_final, but this test's own connection rides out the outages it causes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db_retry(upgrade.refresh_from_db, what="the test's poll", seconds=120)
        if upgrade.is_final:
            return upgrade
        time.sleep(0.3)
    raise AssertionError(f"upgrade #{upgrade.pk} still {upgrade.status} after {timeout} s")


def _assert_truthful_end(upgrade: Upgrade, tenant, status: str, version: str) -> None:
    assert upgrade.status == status, upgrade.error
    assert not upgrade.steps.filter(status=StepStatus.RUNNING).exists(), "a step was left running"
    assert not InstanceLock.objects.filter(instance=tenant.instance).exists(), "the lock was not released"
    assert Upgrade.objects.filter(instance=tenant.instance).count() == 1
    tenant.instance.refresh_from_db()
    assert tenant.instance.observed_version == version
    assert tenant.images() == {version} and tenant.all_healthy()
    assert tenant.served_versions() == {version}


def test_a_terminated_heartbeat_connection_during_up_wait_lets_no_second_operation_start(
    tenant, worker, after_up, private_panel, settings
):
    settings.CCP_LOCK_HEARTBEAT_SECONDS = 0.5
    settings.CCP_LOCK_STALE_SECONDS = 4
    seen = {}

    def cut_the_heartbeat(ctx):
        # A long `up --wait`: meanwhile the heartbeat's idle connection is terminated, longer than the
        # stale time passes, the reconciler runs and a second upgrade is asked for.
        time.sleep(1.5)
        seen["terminated"] = int(
            private_panel.postgres.sql(
                f"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = 'ccp' "
                f"AND {HEARTBEAT_UPDATE}"
            )
        )
        time.sleep(6)
        seen["reconciled"] = reconcile_stale_locks()
        try:
            upgrade_request(instance=tenant.instance, mode=UpgradeMode.IMAGE_ONLY, image_tag="v3", enqueue=False)
        except Conflict as refused:
            seen["second"] = refused.message
        else:
            seen["second"] = "accepted"

    after_up(cut_the_heartbeat)
    upgrade = wait_final(quick(tenant, "v2"))

    assert seen["terminated"] >= 1
    assert seen["reconciled"] == [], "the reconciler took a live worker for dead"
    assert seen["second"].startswith(f"{tenant.instance} is busy: upgrade #{upgrade.pk}")
    _assert_truthful_end(upgrade, tenant, UpgradeStatus.SUCCEEDED, "v2")


def test_a_database_restart_during_an_upgrade_records_its_true_end(tenant, worker, after_up, private_panel):
    after_up(lambda ctx: private_panel.postgres.restart(mode="fast"))

    upgrade = wait_final(quick(tenant, "v2"))

    _assert_truthful_end(upgrade, tenant, UpgradeStatus.SUCCEEDED, "v2")
    assert [s.status for s in upgrade.steps.all()] == [StepStatus.SUCCEEDED] * upgrade.steps.count()


def test_a_ten_second_database_stop_during_an_upgrade_records_its_true_end(tenant, worker, after_up, private_panel):
    def stop_for_ten_seconds(ctx):
        private_panel.postgres.stop(mode="fast")
        threading.Timer(10, private_panel.postgres.start).start()  # the upgrade goes on meanwhile

    after_up(stop_for_ten_seconds)
    upgrade = wait_final(quick(tenant, "v2"), timeout=240)

    _assert_truthful_end(upgrade, tenant, UpgradeStatus.SUCCEEDED, "v2")


def test_a_database_stop_while_an_upgrade_fails_still_rolls_the_node_back_and_says_so(
    tenant, worker, after_up, private_panel
):
    """The node decides: the upgrade breaks a protected file while the database is away; once it
    answers again the failure, the rollback and the version it restored are all recorded."""

    def tamper_and_stop(ctx):
        (tenant.path / "mkdocs" / "index.md").write_bytes(b"tampered\n")
        private_panel.postgres.stop(mode="fast")
        threading.Timer(10, private_panel.postgres.start).start()

    after_up(tamper_and_stop)
    upgrade = wait_final(quick(tenant, "v2"), timeout=240)

    _assert_truthful_end(upgrade, tenant, UpgradeStatus.ROLLED_BACK, "v1")
    assert "mkdocs/index.md" in upgrade.error
    assert upgrade.steps.filter(is_rollback=True, status=StepStatus.SUCCEEDED).count() == 4


def test_a_broker_stopped_mid_operation_and_started_again_changes_nothing(tenant, worker, after_up, private_panel):
    def bounce_the_broker(ctx):
        private_panel.redis.stop()
        time.sleep(3)
        private_panel.redis.start()

    after_up(bounce_the_broker)
    upgrade = wait_final(quick(tenant, "v2"))

    _assert_truthful_end(upgrade, tenant, UpgradeStatus.SUCCEEDED, "v2")
    names = list(upgrade.steps.values_list("name", flat=True))
    assert len(names) == len(set(names)), f"a step was recorded twice: {names}"
