"""Rollouts on the testbed: two sshd nodes, the docker engine, the registry, real Celery workers."""

import subprocess
import time
import urllib.request
import uuid

import pytest
from django.core.management import call_command

from instances.operations.models import OperationStep
from instances.operations.reconcile import reconcile_stale_locks
from upgrades.choices import UpgradeMode, UpgradeStatus
from upgrades.models import Upgrade
from upgrades.rollouts.choices import RolloutItemStatus, RolloutStatus
from upgrades.rollouts.models import Rollout
from upgrades.rollouts.services import rollout_create, rollout_resume

from .helpers import kill_group, start_worker_process

pytestmark = [pytest.mark.testbed, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def six_tenants(make_tenant, testbed_node, second_testbed_node):
    """Six tenants at v1, three on each of two nodes."""
    return [make_tenant(node=node) for node in (testbed_node, second_testbed_node) for _ in range(3)]


@pytest.fixture
def worker_env(worker_process_env):
    return {**worker_process_env, "CCP_ROLLOUT_TICK_SECONDS": "1"}


@pytest.fixture
def workers(worker_env, tmp_path):
    """start() -> a worker process (4 threads); every one started is killed at the end."""
    started = []

    def start():
        started.append(start_worker_process(worker_env, tmp_path / "worker.log", pool="threads", concurrency=4))
        return started[-1]

    yield start
    for process in started:
        if process.poll() is None:
            kill_group(process)


def wait_rollout_end(rollout: Rollout, timeout: float = 300, reconcile_every: float = 0) -> Rollout:
    """Until the rollout is no longer active and none of its upgrades runs; optionally running the
    reconciler now and then, as beat does every minute."""
    deadline, next_reconcile = time.monotonic() + timeout, 0.0
    while time.monotonic() < deadline:
        rollout.refresh_from_db()
        if not rollout.is_active and not rollout.items.filter(status=RolloutItemStatus.RUNNING).exists():
            return rollout
        if reconcile_every and time.monotonic() >= next_reconcile:
            reconcile_stale_locks()
            next_reconcile = time.monotonic() + reconcile_every
        time.sleep(0.5)
    raise AssertionError(f"rollout #{rollout.pk} still {rollout.status} after {timeout} s")


def upgrade_span(upgrade: Upgrade) -> tuple:
    """From its first step's start to its last step's end, as recorded."""
    steps = list(upgrade.steps.all())
    return min(s.started_at for s in steps), max(s.finished_at for s in steps)


def test_rollout_canary_then_waves_with_per_node_limit(six_tenants, workers):
    workers()
    rollout = rollout_create(
        instances=[t.instance for t in six_tenants],
        mode=UpgradeMode.IMAGE_ONLY,
        image_tag="v2",
        canary_size=1,
        waves="2,rest",
        per_node_limit=1,
    )
    rollout = wait_rollout_end(rollout)

    assert rollout.status == RolloutStatus.SUCCEEDED, rollout.reason
    assert all(t.images() == {"v2"} and t.all_healthy() for t in six_tenants)
    items = list(rollout.items.select_related("upgrade", "instance").order_by("position"))
    assert [item.wave for item in items] == [0, 1, 1, 2, 2, 2]
    assert {item.status for item in items} == {RolloutItemStatus.SUCCEEDED}
    assert all(item.upgrade.status == UpgradeStatus.SUCCEEDED for item in items)
    # Each wave's upgrades were requested only after every upgrade of the wave before had ended.
    for wave in (1, 2):
        ended = max(i.upgrade.finished_at for i in items if i.wave == wave - 1)
        assert all(i.upgrade.created_at >= ended for i in items if i.wave == wave)
    # Never two upgrades at once on one node (limit 1), from the steps' recorded times ...
    spans = {}
    for item in items:
        spans.setdefault(item.instance.node_id, []).append(upgrade_span(item.upgrade))
    for node_spans in spans.values():
        node_spans.sort()
        assert all(a[1] <= b[0] for a, b in zip(node_spans, node_spans[1:], strict=False)), node_spans
    # ... while the two nodes did work at the same time.
    first, second = spans.values()
    assert any(a[0] < b[1] and b[0] < a[1] for a in first for b in second)
    assert Upgrade.objects.filter(instance__in=[t.instance for t in six_tenants]).count() == 6


MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.index.v1+json"
)


@pytest.fixture
def mutable_tag(docker_engine):
    """A registry tag the test re-points on the registry itself (as someone re-pushing a "latest"-like
    tag would), without touching the tags of the engine the nodes use."""
    tag = f"mut-{uuid.uuid4().hex[:8]}"
    base = f"http://{docker_engine.registry}/v2/ccp-test/app/manifests"

    def point_to(source: str) -> None:
        with urllib.request.urlopen(
            urllib.request.Request(f"{base}/{source}", headers={"Accept": MANIFEST_TYPES})
        ) as got:
            body, media_type = got.read(), got.headers["Content-Type"]
        put = urllib.request.Request(f"{base}/{tag}", data=body, method="PUT", headers={"Content-Type": media_type})
        urllib.request.urlopen(put).close()

    point_to("v2")
    yield tag, point_to
    subprocess.run(["docker", "rmi", docker_engine.image(tag)], capture_output=True, timeout=60, check=False)


def test_rollout_halts_when_the_target_fails_health_in_wave_2_and_resumes(
    six_tenants, mutable_tag, after_up, celery_worker_thread
):
    tag, point_to = mutable_tag
    rollout = rollout_create(
        instances=[t.instance for t in six_tenants],
        mode=UpgradeMode.IMAGE_ONLY,
        image_tag=tag,
        canary_size=1,
        waves="2,rest",
        parallelism=1,
    )
    wave_1 = list(rollout.items.filter(wave=1).values_list("instance_id", flat=True))
    done_in_wave_1 = []

    def after_wave_1_up(ctx) -> None:  # the tag is re-pushed as a broken build once wave 1 has pulled it
        if ctx.upgrade.instance_id in wave_1:
            done_in_wave_1.append(ctx.upgrade.instance_id)
            if len(done_in_wave_1) == len(wave_1):
                point_to("broken")

    after_up(after_wave_1_up)
    by_instance = {t.instance.pk: t for t in six_tenants}
    untouched_before = {}
    for item in rollout.items.filter(wave=2):
        tenant = by_instance[item.instance_id]
        untouched_before[item.instance_id] = (tenant.env(), tenant.container_ids())

    rollout = wait_rollout_end(rollout)

    assert rollout.status == RolloutStatus.HALTED
    items = {item.instance_id: item for item in rollout.items.select_related("upgrade")}
    failed = [item for item in items.values() if item.status == RolloutItemStatus.FAILED]
    assert len(failed) == 1 and failed[0].wave == 2
    assert failed[0].upgrade.status == UpgradeStatus.ROLLED_BACK
    assert str(failed[0].instance) in rollout.reason and "failure budget of 0" in rollout.reason
    failed_tenant = by_instance[failed[0].instance_id]
    assert failed_tenant.images() == {"v1"} and failed_tenant.all_healthy()  # rolled back
    untouched = [item for item in items.values() if item.status == RolloutItemStatus.PENDING]
    assert len(untouched) == 2 and {item.wave for item in untouched} == {2}
    for item in untouched:  # files and containers exactly as before the rollout
        tenant = by_instance[item.instance_id]
        assert item.upgrade is None and not Upgrade.objects.filter(instance_id=item.instance_id).exists()
        assert (tenant.env(), tenant.container_ids()) == untouched_before[item.instance_id]
        assert tenant.images() == {"v1"}
    done = [item for item in items.values() if item.status == RolloutItemStatus.SUCCEEDED]
    assert sorted(item.wave for item in done) == [0, 1, 1]

    rollout = wait_rollout_end(rollout_resume(rollout=rollout, image_tag="v3"))

    assert rollout.status == RolloutStatus.SUCCEEDED, rollout.reason
    resumed = {failed[0].instance_id, *(item.instance_id for item in untouched)}
    for instance_id, tenant in by_instance.items():
        upgrades = list(Upgrade.objects.filter(instance_id=instance_id).order_by("created_at"))
        if instance_id in resumed:
            assert upgrades[-1].target_tag == "v3" and upgrades[-1].status == UpgradeStatus.SUCCEEDED
            assert tenant.images() == {"v3"}
            assert len(upgrades) == (2 if instance_id == failed[0].instance_id else 1)
        else:  # done before the halt: not upgraded again
            assert [u.target_tag for u in upgrades] == [tag] and tenant.served_versions() == {"v2"}


def test_a_killed_worker_s_rollout_goes_on_or_halts_visibly(six_tenants, workers, settings):
    settings.CCP_LOCK_STALE_SECONDS = 5
    first = workers()
    rollout = rollout_create(
        instances=[t.instance for t in six_tenants],
        mode=UpgradeMode.IMAGE_ONLY,
        image_tag="v2",
        canary_size=1,
        waves="rest",
        per_node_limit=1,
    )
    deadline = time.monotonic() + 180
    wave_1_upgrades = rollout.items.filter(wave=1, upgrade__isnull=False).values("upgrade_id")
    while not OperationStep.objects.filter(
        kind="upgrade", operation_id__in=wave_1_upgrades
    ).exists():  # mid-rollout: wave 1 runs
        assert time.monotonic() < deadline, "wave 1 never started"
        time.sleep(0.2)
    kill_group(first)
    workers()

    rollout = wait_rollout_end(rollout, reconcile_every=3)

    assert rollout.status in (RolloutStatus.SUCCEEDED, RolloutStatus.HALTED)
    if rollout.status == RolloutStatus.HALTED:
        assert "failure budget" in rollout.reason
    for tenant in six_tenants:
        upgrades = list(Upgrade.objects.filter(instance=tenant.instance))
        assert len(upgrades) <= 1, f"{tenant.instance} upgraded {len(upgrades)} times"
        item = rollout.items.get(instance=tenant.instance)
        if item.status == RolloutItemStatus.SUCCEEDED:
            assert tenant.images() == {"v2"} and upgrades[0].status == UpgradeStatus.SUCCEEDED
        elif item.status == RolloutItemStatus.FAILED:  # the killed worker's upgrade, rolled back from the node's copies
            assert upgrades[0].status in (UpgradeStatus.ROLLED_BACK_INTERRUPTED, UpgradeStatus.INTERRUPTED)
            assert tenant.images() == {"v1"}
        else:
            assert item.status == RolloutItemStatus.PENDING and not upgrades and tenant.images() == {"v1"}


def test_the_rollout_command_prints_progress_and_exits_0_when_it_succeeded(
    make_tenant, testbed_node, second_testbed_node, celery_worker_thread, capsys
):
    tenants = [make_tenant(node=testbed_node), make_tenant(node=second_testbed_node)]
    call_command("rollout", *(t.instance.slug for t in tenants), "--to", "v2", "--canary", "1", "--timeout", "240")

    out = capsys.readouterr().out
    assert "to v2: 2 instance(s)" in out and "[running] wave 0" in out and "succeeded" in out.splitlines()[-1]
    assert all(t.images() == {"v2"} for t in tenants)


def test_a_release_rollout_excludes_blocked_previews_and_refuses_a_node_changed_after_approval(
    make_tenant, testbed_release, after_up, celery_worker_thread
):
    canary, second = make_tenant(), make_tenant()
    blocked = make_tenant(registered=True)
    env = blocked.path / ".env"
    env.write_bytes(b"\n".join(line for line in env.read_bytes().split(b"\n") if not line.startswith(b"API_PORT")))
    v2 = testbed_release("v2.0.0", "v2")
    config = second.path / "configs" / "app.conf"

    def change_the_second_node_after_approval(ctx) -> None:
        if ctx.upgrade.instance_id == canary.instance.pk:
            config.write_bytes(config.read_bytes() + b"# changed on the node after the rollout was approved\n")

    after_up(change_the_second_node_after_approval)
    rollout = rollout_create(
        instances=[canary.instance, second.instance, blocked.instance], mode=UpgradeMode.RELEASE, release=v2
    )
    items = {item.instance_id: item for item in rollout.items.all()}
    assert items[blocked.instance.pk].status == RolloutItemStatus.EXCLUDED
    assert "API_PORT" in items[blocked.instance.pk].error
    assert all(len(items[t.instance.pk].approved_preview_hash) == 64 for t in (canary, second))
    compose_before = (second.path / "docker-compose.yml").read_bytes()

    rollout = wait_rollout_end(rollout)

    assert rollout.status == RolloutStatus.HALTED
    items = {item.instance_id: item for item in rollout.items.select_related("upgrade")}
    assert items[canary.instance.pk].status == RolloutItemStatus.SUCCEEDED and canary.images() == {"v2"}
    refused = items[second.instance.pk]
    assert refused.status == RolloutItemStatus.FAILED and "changed since the preview was approved" in refused.error
    assert (second.path / "docker-compose.yml").read_bytes() == compose_before and second.images() == {"v1"}
    assert not Upgrade.objects.filter(instance=blocked.instance).exists() and blocked.images() == {"v1"}
