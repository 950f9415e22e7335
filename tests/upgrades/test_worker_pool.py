"""The default worker pool (threads, as `make run` starts it) runs upgrades side by side."""

import time

import pytest
from celery.contrib.testing.worker import start_worker

from ccp.celery import app
from ccp.errors import Conflict
from upgrades.choices import UpgradeStatus

from .helpers import quick, wait_final

pytestmark = [pytest.mark.testbed, pytest.mark.django_db(transaction=True)]


def test_a_threads_worker_runs_upgrades_of_several_tenants_at_once(make_tenant):
    tenants = [make_tenant() for _ in range(3)]
    with start_worker(app, pool="threads", concurrency=8, perform_ping_check=False, shutdown_timeout=60):
        started = time.monotonic()
        upgrades = [quick(tenant, "v2") for tenant in tenants]
        with pytest.raises(Conflict):  # the per-instance lock stays the guard
            quick(tenants[0], "v3")
        finished = [wait_final(upgrade) for upgrade in upgrades]
        elapsed = time.monotonic() - started

    assert [u.status for u in finished] == [UpgradeStatus.SUCCEEDED] * 3, [u.error for u in finished]
    assert all(t.images() == {"v2"} and t.all_healthy() for t in tenants)
    # They overlapped: every upgrade started before the first one finished.
    assert max(u.started_at for u in finished) < min(u.finished_at for u in finished), elapsed
