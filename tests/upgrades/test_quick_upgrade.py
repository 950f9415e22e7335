"""Quick upgrade on the testbed: real sshd, docker engine, compose v2, registry, a real Celery worker."""

from datetime import timedelta

import pytest
from django.utils import timezone

from instances.models import Instance
from instances.operations.models import InstanceLock
from instances.operations.reconcile import reconcile_stale_locks
from upgrades.choices import UpgradeMode, UpgradeStatus
from upgrades.models import Upgrade
from upgrades.services import upgrade_request

from .helpers import quick, wait_final

pytestmark = [pytest.mark.testbed, pytest.mark.django_db(transaction=True)]


def test_quick_upgrade_v1_to_v2(make_tenant, celery_worker_thread):
    tenant = make_tenant()
    content_before = tenant.mkdocs_sums()
    assert tenant.images() == {"v1"} and len(content_before) == 4

    upgrade = wait_final(quick(tenant, "v2"))

    assert upgrade.status == UpgradeStatus.SUCCEEDED, upgrade.error
    assert tenant.images() == {"v2"} and tenant.all_healthy()
    assert tenant.served_versions() == {"v2"}
    assert b"\nIMAGE_TAG=v2\n" in tenant.env()
    assert tenant.mkdocs_sums() == content_before
    steps = list(upgrade.steps.order_by("position"))
    assert [s.status for s in steps] == ["succeeded"] * len(steps)
    assert "set IMAGE_TAG in .env" in [s.name for s in steps]
    assert all(s.duration_seconds is not None for s in steps) and upgrade.duration_seconds > 0
    tenant.instance.refresh_from_db()
    assert tenant.instance.observed_version == "v2" and upgrade.from_version == "v1"


def test_quick_upgrade_to_a_broken_tag_rolls_back(make_tenant, celery_worker_thread):
    tenant = make_tenant(tag="v2")
    env_before = tenant.env()

    upgrade = wait_final(quick(tenant, "broken"))

    assert upgrade.status == UpgradeStatus.ROLLED_BACK, upgrade.error
    assert tenant.images() == {"v2"} and tenant.all_healthy()
    assert tenant.env() == env_before
    rollback = [s.name for s in upgrade.steps.filter(is_rollback=True, status="succeeded")]
    assert rollback == [
        "restore .env",
        "start previous containers (up -d --wait)",
        "health check after rollback",
        "verify running images after rollback",
    ]
    assert "docker compose up did not bring the stack up healthy" in upgrade.error


def test_quick_upgrade_to_the_running_tag_changes_nothing(make_tenant, celery_worker_thread):
    tenant = make_tenant(tag="v2")
    ids_before, env_before = tenant.container_ids(), tenant.env()
    mtime_before = (tenant.path / ".env").stat().st_mtime_ns

    upgrade = wait_final(quick(tenant, "v2"))

    assert upgrade.status == UpgradeStatus.SUCCEEDED, upgrade.error
    assert tenant.container_ids() == ids_before
    assert tenant.env() == env_before and (tenant.path / ".env").stat().st_mtime_ns == mtime_before
    assert upgrade.steps.filter(name="set IMAGE_TAG in .env", status="skipped").exists()


def test_protected_file_changed_during_the_upgrade_is_named_and_rolled_back(
    make_tenant, celery_worker_thread, after_up
):
    tenant = make_tenant()
    victim = tenant.path / "mkdocs" / "docs" / "guide with spaces.md"

    def tamper(ctx):
        victim.write_bytes(b"changed behind the tenant's back\n")

    after_up(tamper)
    upgrade = wait_final(quick(tenant, "v2"))

    assert upgrade.status == UpgradeStatus.ROLLED_BACK
    assert "mkdocs/docs/guide with spaces.md" in upgrade.error
    assert tenant.images() == {"v1"} and tenant.all_healthy()
    assert b"\nIMAGE_TAG=v1\n" in tenant.env()


def test_cancel_during_an_upgrade_stops_at_the_next_safe_point_and_rolls_back(
    make_tenant, celery_worker_thread, after_up
):
    tenant = make_tenant()

    def operator_cancels(ctx):
        Upgrade.objects.filter(pk=ctx.upgrade.pk).update(cancel_requested=True)

    after_up(operator_cancels)
    upgrade = wait_final(quick(tenant, "v2"))

    assert upgrade.status == UpgradeStatus.CANCELLED
    assert tenant.images() == {"v1"} and tenant.all_healthy() and b"\nIMAGE_TAG=v1\n" in tenant.env()
    assert not upgrade.steps.filter(name="health check").exists()


def test_upgrade_command_runs_in_the_foreground_and_prints_steps(make_tenant, capsys):
    from django.core.management import call_command

    tenant = make_tenant()
    call_command("upgrade", tenant.instance.slug, "--mode", "image_only", "--to", "v3")
    out = capsys.readouterr().out
    assert "succeeded precheck" in out and "succeeded start containers (up -d --wait)" in out
    assert out.strip().splitlines()[-1].startswith("Succeeded in ")
    assert tenant.images() == {"v3"}


def test_a_dead_workers_quick_upgrade_is_marked_interrupted_and_its_lock_released(make_instance):
    instance = make_instance()
    upgrade = upgrade_request(instance=instance, mode=UpgradeMode.IMAGE_ONLY, image_tag="v2")
    InstanceLock.objects.filter(instance=instance).update(
        owner="ccp-host-that-died:1", heartbeat_at=timezone.now() - timedelta(hours=1)
    )
    Upgrade.objects.filter(pk=upgrade.pk).update(status=UpgradeStatus.RUNNING)

    report = reconcile_stale_locks()

    upgrade.refresh_from_db()
    instance.refresh_from_db()
    # It had not changed the node yet (no step that changes anything ran): nothing to roll back or flag.
    assert upgrade.status == UpgradeStatus.INTERRUPTED and "lost heartbeat" in upgrade.error
    assert "before it changed anything" in upgrade.error
    assert not InstanceLock.objects.filter(instance=instance).exists()
    assert f"upgrade #{upgrade.pk}" in report[0] and instance.attention == ""


def test_check_health_records_health_and_the_running_version(make_tenant, api, operator):
    tenant = make_tenant(tag="v3")

    Instance.objects.filter(pk=tenant.instance.pk).update(observed_version="", health="unknown")
    response = api(operator).post(f"/api/v1/instances/{tenant.instance.slug}/check-health/")
    assert response.status_code == 200, response.content
    assert response.json()["health"] == "healthy" and response.json()["observed_version"] == "v3"

    tenant.compose("stop", "web")
    response = api(operator).post(f"/api/v1/instances/{tenant.instance.slug}/check-health/")
    assert response.json()["health"] == "unhealthy"


def test_a_node_without_registry_access_gets_the_images_shipped(make_tenant, celery_worker_thread, docker_engine):
    import subprocess

    tenant = make_tenant()
    tenant.node.registry_access = False
    tenant.node.save()
    subprocess.run(["docker", "image", "rm", "--force", docker_engine.image("v3")], capture_output=True)

    upgrade = wait_final(quick(tenant, "v3"))

    assert upgrade.status == UpgradeStatus.SUCCEEDED, upgrade.error
    assert tenant.images() == {"v3"} and tenant.all_healthy()
    pull = upgrade.steps.get(name="pull images")
    # This node shares the panel host's engine: pulled there, the node then already has it by ID.
    # Shipping to a node with an engine of its own: tests/upgrades/test_registry_less.py.
    assert f"{docker_engine.image('v3')}: neither the panel host nor an image source node has it" in pull.output
    assert f"{docker_engine.image('v3')}: the node already has" in pull.output


def test_a_compose_project_that_does_not_load_stops_the_upgrade_before_any_change(make_tenant, celery_worker_thread):
    tenant = make_tenant()
    compose = tenant.path / "docker-compose.yml"
    compose.write_text(compose.read_text().replace("services:", "services: [broken"))
    env_before = tenant.env()

    upgrade = wait_final(quick(tenant, "v2"))

    assert upgrade.status == UpgradeStatus.FAILED and "does not load" in upgrade.error
    assert tenant.env() == env_before and not upgrade.steps.filter(is_rollback=True).exists()


def test_a_rollback_that_fails_too_ends_failed_and_flags_the_instance(make_tenant, celery_worker_thread, after_up):
    tenant = make_tenant()

    def break_everything(ctx):
        (tenant.path / "mkdocs" / "index.md").write_bytes(b"tampered\n")  # the upgrade fails ...
        compose = tenant.path / "docker-compose.yml"
        compose.write_text(compose.read_text().replace("services:", "services: [broken"))  # ... and its rollback

    after_up(break_everything)
    upgrade = wait_final(quick(tenant, "v2"))

    assert upgrade.status == UpgradeStatus.FAILED
    assert "mkdocs/index.md" in upgrade.error and "Rollback failed too" in upgrade.error
    tenant.instance.refresh_from_db()
    assert f"Upgrade #{upgrade.pk} failed and its rollback failed" in tenant.instance.attention
    assert upgrade.steps.filter(is_rollback=True, status="failed").exists()
