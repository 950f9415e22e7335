"""Upgrade to release on the testbed: rendered files written, registered tenants' .env untouched,
blocked previews and stale approvals refused before anything is written."""

import os

import pytest

from instances.models import Instance
from instances.preview import instance_preview
from upgrades.choices import UpgradeMode, UpgradeStatus
from upgrades.services import upgrade_request

from .helpers import wait_final

pytestmark = [pytest.mark.testbed, pytest.mark.django_db(transaction=True)]


def release_upgrade(tenant, release, preview_hash=None):
    if preview_hash is None:
        preview_hash = instance_preview(instance=tenant.instance, release=release).preview_hash
    return upgrade_request(
        instance=tenant.instance, mode=UpgradeMode.RELEASE, release=release, preview_hash=preview_hash
    )


def test_release_upgrade_of_a_panel_tenant_writes_the_rendered_files(
    make_tenant, testbed_release, celery_worker_thread
):
    tenant = make_tenant()
    content_before = tenant.mkdocs_sums()
    v2 = testbed_release("v2.0.0", "v2")
    # The tenant also enables the optional service, which the upgrade must start.
    Instance.objects.filter(pk=tenant.instance.pk).update(profiles="extra")
    tenant.instance.refresh_from_db()
    preview = instance_preview(instance=tenant.instance, release=v2)
    assert preview.has_changes

    upgrade = wait_final(release_upgrade(tenant, v2, preview.preview_hash))

    assert upgrade.status == UpgradeStatus.SUCCEEDED, upgrade.error
    for path, rendered in preview.files.items():
        assert (tenant.path / path).read_bytes() == rendered.content, path
    assert b"IMAGE_TAG=v2" in tenant.env() and b"COMPOSE_PROFILES=extra" in tenant.env()
    assert tenant.images() == {"v2"} and tenant.all_healthy()
    assert {c["Service"] for c in tenant.containers()} == {"web", "api", "docs", "extra"}
    assert tenant.mkdocs_sums() == content_before
    tenant.instance.refresh_from_db()
    assert tenant.instance.observed_version == "v2.0.0"
    # copies of what it overwrote are kept on the node
    assert (tenant.path / ".ccp" / "upgrades" / str(upgrade.pk) / ".env").exists()


def test_release_upgrade_of_a_registered_tenant_leaves_its_env_byte_identical(
    make_tenant, testbed_release, celery_worker_thread
):
    tenant = make_tenant(registered=True)
    env_before = tenant.env()
    compose = tenant.path / "docker-compose.yml"
    compose.write_text(compose.read_text().replace("retries: 5", "retries: 6"))  # drifted by hand
    v2 = testbed_release("v2.0.0", "v2")

    upgrade = wait_final(release_upgrade(tenant, v2))

    assert upgrade.status == UpgradeStatus.SUCCEEDED, upgrade.error
    assert tenant.env() == env_before
    assert "retries: 6" not in compose.read_text() and "retries: 5" in compose.read_text()
    assert "${IMAGE_TAG:-v2}" in compose.read_text()
    assert tenant.all_healthy()
    # Its own .env pins IMAGE_TAG=v1, which compose prefers: the recorded version says what really runs.
    assert tenant.images() == {"v1"}
    tenant.instance.refresh_from_db()
    assert tenant.instance.observed_version == "v1"
    assert "pins IMAGE_TAG" in upgrade.steps.get(name="record version").output


def test_registered_tenant_with_an_env_gap_is_refused_before_anything_is_written(
    make_tenant, testbed_release, celery_worker_thread
):
    tenant = make_tenant(registered=True)
    env = tenant.path / ".env"
    env.write_bytes(b"\n".join(line for line in env.read_bytes().split(b"\n") if not line.startswith(b"API_PORT")))
    compose = tenant.path / "docker-compose.yml"
    compose.write_text(compose.read_text() + "\n# hand edit\n")
    before = {p: p.read_bytes() for p in (env, compose)}
    v1 = testbed_release("v1", "v1")

    preview = instance_preview(instance=tenant.instance, release=v1)
    assert preview.blocked and "API_PORT" in preview.blocked_reason
    assert "APP_MODE" not in preview.coverage.required_missing  # it has a default in the compose file
    upgrade = wait_final(release_upgrade(tenant, v1, preview.preview_hash))

    assert upgrade.status == UpgradeStatus.FAILED
    assert "API_PORT" in upgrade.error
    assert {p: p.read_bytes() for p in before} == before
    assert not upgrade.steps.filter(name="write rendered files").exists()


def test_a_preview_hash_that_no_longer_matches_is_refused(make_tenant, testbed_release, celery_worker_thread):
    tenant = make_tenant()
    v2 = testbed_release("v2.0.0", "v2")
    approved = instance_preview(instance=tenant.instance, release=v2).preview_hash
    config = tenant.path / "configs" / "app.conf"
    config.write_bytes(config.read_bytes() + b"# changed on the node after the preview\n")
    compose_before = (tenant.path / "docker-compose.yml").read_bytes()

    upgrade = wait_final(release_upgrade(tenant, v2, approved))

    assert upgrade.status == UpgradeStatus.FAILED
    assert "changed since the preview was approved" in upgrade.error
    assert (tenant.path / "docker-compose.yml").read_bytes() == compose_before
    assert tenant.images() == {"v1"}


def test_a_tenant_whose_compose_file_is_compose_yaml_is_refused_before_anything_is_written(
    make_tenant, testbed_release, celery_worker_thread
):
    # docker compose reads compose.yaml before docker-compose.yml: the release's file would be written
    # beside the tenant's and never used, while the upgrade reported the release as running.
    tenant = make_tenant()
    os.replace(tenant.path / "docker-compose.yml", tenant.path / "compose.yaml")
    ids = tenant.container_ids()
    v2 = testbed_release("v2.0.0", "v2")

    upgrade = wait_final(release_upgrade(tenant, v2))

    assert upgrade.status == UpgradeStatus.FAILED
    assert "compose.yaml" in upgrade.error and "docker-compose.yml" in upgrade.error
    assert not (tenant.path / "docker-compose.yml").exists()
    assert b"IMAGE_TAG=v1" in tenant.env() and tenant.images() == {"v1"}
    assert tenant.container_ids() == ids
