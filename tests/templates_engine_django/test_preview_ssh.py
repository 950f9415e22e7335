"""Preview against a real node: an sshd on 127.0.0.x (tests/testbed), files read over SFTP."""

import posixpath

import pytest

from instances.drivers import driver_for
from instances.models import Node
from instances.selectors import instance_preview_report
from templates_engine import ChangeKind, FileStatus

from .helpers import install, run_command

pytestmark = [pytest.mark.django_db, pytest.mark.testbed]


@pytest.fixture
def ssh_tenant(ssh_node, node_workdir, make_node, make_tenant, testbed_release):
    """A testbed tenant on the sshd node, installed with the default release (as an upgrade leaves it)."""
    node = make_node(
        name=f"ssh-{ssh_node.host.replace('.', '-')}-{ssh_node.port}",
        driver="ssh",
        address=ssh_node.host,
        ssh_port=ssh_node.port,
        ssh_user=ssh_node.user,
    )
    node.set_private_key(ssh_node.client_key)
    node.save()
    tenant = make_tenant(node=node, install_dir=str(node_workdir)).instance
    install(tenant, driver=driver_for(node))
    return tenant


def test_an_unchanged_tenant_reports_no_changes(ssh_tenant):
    report = instance_preview_report(instance=ssh_tenant)
    assert not report.has_changes
    assert {f.status for f in report.files} == {FileStatus.UNCHANGED}
    assert report.kind == ChangeKind.NONE
    assert Node.objects.get(pk=ssh_tenant.node.pk).host_key_fingerprint  # pinned on first contact
    assert run_command("preview", ssh_tenant.slug).code == 0


def test_a_changed_port_is_values_only(ssh_tenant):
    ssh_tenant.ports = {**ssh_tenant.ports, "web": ssh_tenant.ports["web"] + 100}
    ssh_tenant.save()

    report = instance_preview_report(instance=ssh_tenant)

    assert [(f.path, f.status, f.kind) for f in report.changes] == [(".env", "changed", "values-only")]
    assert report.kind == ChangeKind.VALUES_ONLY
    assert run_command("preview", ssh_tenant.slug).code == 1


def test_a_release_that_adds_a_service_is_structural(ssh_tenant):
    # The node runs an older release whose compose file had no "extra" service.
    driver = driver_for(ssh_tenant.node)
    path = posixpath.join(ssh_tenant.install_dir, "docker-compose.yml")
    current = driver.read_file(path).decode()
    older = current[: current.index("  # Optional: enabling")]
    driver.write_file(path, older.encode())

    report = instance_preview_report(instance=ssh_tenant)

    compose = next(f for f in report.files if f.path == "docker-compose.yml")
    assert (compose.status, compose.kind) == (FileStatus.CHANGED, ChangeKind.STRUCTURAL)
    assert "+  extra:" in compose.diff
    assert report.kind == ChangeKind.STRUCTURAL


def test_a_file_deleted_on_the_node_is_missing(ssh_tenant):
    driver = driver_for(ssh_tenant.node)
    driver.run(["rm", posixpath.join(ssh_tenant.install_dir, "configs/app.conf")], check=True)
    report = instance_preview_report(instance=ssh_tenant)
    conf = next(f for f in report.files if f.path == "configs/app.conf")
    assert (conf.status, conf.kind) == (FileStatus.MISSING, ChangeKind.STRUCTURAL)
