"""Previews of a selection on a worker: parallel across real SSH nodes, the same hashes as one by one."""

import os
import posixpath
import time

import pytest
from celery.contrib.testing.worker import start_worker

from ccp.celery import app
from ccp.errors import CCPError
from instances.choices import PreviewPurpose, PreviewRunStatus
from instances.drivers import close_all, driver_for
from instances.models import PreviewRun
from instances.node_queries import read_files
from instances.preview import instance_preview, instance_render
from instances.preview_runs import preview_run_request
from templates_engine import preview_render

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


def serial_hash_over_sftp(instance, release) -> str:
    """The preview hash as the one-file-at-a-time SFTP reads computed it."""
    release, template_set, files = instance_render(instance=instance, release=release)
    driver = driver_for(instance.node)
    actual = {}
    for path in files:
        try:
            actual[path] = driver.read_file(posixpath.join(instance.install_dir, path))
        except FileNotFoundError:
            actual[path] = None
    return preview_render(template_set, files, actual).preview_hash


@pytest.fixture
def fleet(ssh_node, second_ssh_node, make_node, make_tenant, node_workdir_factory, testbed_release):
    """Eight tenants on two SSH nodes: installed, edited on the node, never installed, registered with
    a .env that is a symlink into another folder."""
    tenants = []
    for sshd in (ssh_node, second_ssh_node):
        node = ssh_node_row(make_node, sshd)
        driver = driver_for(node)
        for n in range(4):
            workdir = node_workdir_factory()
            registered = n == 3
            tenant = make_tenant(node=node, install_dir=str(workdir), is_registered=registered).instance
            if n != 2:
                install(tenant, driver=driver)
            if n == 1:
                (workdir / "configs" / "app.conf").write_text("greeting=edited by hand\n")
            if registered:
                elsewhere = node_workdir_factory()
                (elsewhere / "tenant.env").write_text("# the install script's own\nWEB_PORT=1\nWEB_PORT=2\n")
                os.symlink(elsewhere / "tenant.env", workdir / ".env")
            tenants.append(tenant)
    yield tenants
    close_all()


def wait_final(run: PreviewRun, timeout: float = 60) -> PreviewRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.is_final:
            return run
        time.sleep(0.1)
    raise AssertionError(f"preview run #{run.pk} still {run.status}")


def test_a_preview_run_on_a_worker_gives_the_serial_hashes(fleet, testbed_release, settings):
    settings.CCP_PREVIEW_PER_NODE = 2
    with start_worker(app, pool="solo", concurrency=1, perform_ping_check=False, shutdown_timeout=60):
        run = wait_final(
            preview_run_request(
                instance_ids=[t.pk for t in fleet], release=testbed_release, purpose=PreviewPurpose.PREVIEW
            )
        )

    assert run.status == PreviewRunStatus.SUCCEEDED and run.done == len(fleet)
    hashes = {int(pk): result["report"]["preview_hash"] for pk, result in run.results.items()}
    for tenant in fleet:
        assert hashes[tenant.pk] == instance_preview(instance=tenant, release=testbed_release).preview_hash
        assert hashes[tenant.pk] == serial_hash_over_sftp(tenant, testbed_release)
    edited = run.results[str(fleet[1].pk)]["report"]
    assert [f["status"] for f in edited["files"] if f["path"] == "configs/app.conf"] == ["changed"]
    never = run.results[str(fleet[2].pk)]["report"]
    assert {f["status"] for f in never["files"]} == {"missing"}
    registered = run.results[str(fleet[3].pk)]["report"]
    assert registered["blocked"] and "API_PORT" in registered["blocked_reason"]  # read through the symlink
    assert all(t.get_secrets()["APP_SECRET"] not in str(run.results) for t in fleet if not t.is_registered)


def test_read_files_is_one_stream_and_says_what_it_cannot_read(fleet):
    tenant = fleet[0]
    driver = driver_for(tenant.node)
    files = read_files(driver, tenant.install_dir, ["docker-compose.yml", "nope.txt", "configs/nope/x"])
    assert files["docker-compose.yml"].startswith(b"#") and files["nope.txt"] is None
    assert files["configs/nope/x"] is None
    secret = os.path.join(tenant.install_dir, "configs", "locked.conf")
    with open(secret, "w") as f:
        f.write("root only\n")
    os.chmod(secret, 0)
    with pytest.raises(CCPError, match="Permission denied"):
        read_files(driver, tenant.install_dir, ["configs/locked.conf"])
    with pytest.raises(CCPError, match="it is not a file"):
        read_files(driver, tenant.install_dir, ["configs"])
    assert read_files(driver, tenant.install_dir + "/gone", ["a"]) == {"a": None}


def test_old_preview_runs_are_removed_when_a_new_one_is_requested(testbed_release):
    from datetime import timedelta

    from django.utils import timezone

    old = PreviewRun.objects.create(release_version=testbed_release.version, instance_ids=[1])
    PreviewRun.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=2))
    fresh = preview_run_request(instance_ids=[], release=testbed_release)
    assert list(PreviewRun.objects.values_list("pk", flat=True)) == [fresh.pk]
