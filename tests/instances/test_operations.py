"""The operation layer's reconciler: a handler per operation kind, and what happens to a lock of a kind
nobody handles. (The handlers of upgrades, backups and restores are tested with their operations.)"""

from datetime import timedelta

import pytest
from django.utils import timezone

from instances.operations.choices import OperationKind
from instances.operations.models import InstanceLock
from instances.operations.reconcile import _HANDLERS, reconcile_stale_locks


def test_every_operation_kind_has_a_reconciler_handler():
    assert set(_HANDLERS) == {str(kind) for kind in OperationKind}


@pytest.mark.django_db
def test_a_dead_lock_of_a_kind_nobody_handles_is_released_with_a_sentence(make_instance):
    instance = make_instance()
    InstanceLock.objects.create(
        instance=instance,
        kind="rollout",
        operation_id=9,
        owner="gone-host:1",
        heartbeat_at=timezone.now() - timedelta(hours=1),
    )

    report = reconcile_stale_locks()

    assert not InstanceLock.objects.filter(instance=instance).exists()
    assert report == [f"{instance}: rollout #9 lost its worker; no handler knows it: lock released."]


@pytest.mark.django_db
def test_a_live_lock_is_left_alone(make_instance):
    instance = make_instance()
    InstanceLock.objects.create(
        instance=instance,
        kind=OperationKind.BACKUP,
        operation_id=3,
        owner="another-host:1",
        heartbeat_at=timezone.now(),
    )

    assert reconcile_stale_locks() == []
    assert InstanceLock.objects.filter(instance=instance).exists()
