"""Node check and host-key re-pinning, through the service, the API, the admin and a real Celery worker."""

from pathlib import Path

import pytest
from celery.contrib.testing.worker import start_worker
from django.contrib.admin.models import LogEntry

from ccp.celery import app
from instances.drivers import close_all
from instances.models import Node
from instances.tasks import node_check_task

pytestmark = pytest.mark.testbed


@pytest.fixture
def node_on(make_node):
    made = []

    def make(sshd, **extra) -> Node:
        node = make_node(**sshd.node_fields(), **extra)
        made.append(node)
        return node

    yield make
    close_all()


@pytest.mark.django_db
def test_check_over_ssh_records_versions_and_pins_the_key(api, operator, node_on, ssh_node, docker_engine):
    node = node_on(ssh_node, instance_root="/srv/ccp-testbed")
    response = api(operator).post(f"/api/v1/nodes/{node.name}/check/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["check_ok"] is True and body["check_error"] == ""
    assert body["docker_version"][:2].isdigit() and body["compose_version"].startswith(("2.", "v2."))
    assert body["disk_free_bytes"] > 0 and body["checked_at"]
    assert body["host_key_fingerprint"] == ssh_node.host_key_fingerprint


@pytest.mark.django_db
def test_check_of_an_unreachable_node_is_recorded_with_its_reason(api, operator, make_node, settings):
    settings.CCP_SSH_KEY_DIR = str(Path(__file__).parent)
    node = make_node(driver="ssh", address="127.0.0.1", ssh_port=1, ssh_key_path=__file__)
    response = api(operator).post(f"/api/v1/nodes/{node.name}/check/")
    assert response.status_code in (400, 502)
    assert "Traceback" not in response.content.decode()
    node.refresh_from_db()
    assert node.check_ok is False and node.check_error


@pytest.mark.django_db
def test_viewer_cannot_check_or_repin(api, viewer, make_node):
    node = make_node()
    assert api(viewer).post(f"/api/v1/nodes/{node.name}/check/").status_code == 403
    assert api(viewer).post(f"/api/v1/nodes/{node.name}/repin-host-key/").status_code == 403


@pytest.mark.django_db
def test_changed_host_key_is_refused_then_repinned_and_recorded(
    api, operator, node_on, ssh_node_factory, docker_engine
):
    sshd = ssh_node_factory()
    node = node_on(sshd)
    client = api(operator)
    assert client.post(f"/api/v1/nodes/{node.name}/check/").status_code == 200
    old = Node.objects.get(pk=node.pk).host_key_fingerprint
    close_all()
    sshd.restart_with_new_host_key()

    refused = client.post(f"/api/v1/nodes/{node.name}/check/")
    assert refused.status_code == 502
    assert old in refused.json()["detail"] and sshd.host_key_fingerprint in refused.json()["detail"]

    repinned = client.post(
        f"/api/v1/nodes/{node.name}/repin-host-key/", {"fingerprint": sshd.host_key_fingerprint}, format="json"
    )
    assert repinned.status_code == 200 and repinned.json()["host_key_fingerprint"] == sshd.host_key_fingerprint
    assert client.post(f"/api/v1/nodes/{node.name}/check/").json()["check_ok"] is True
    entry = LogEntry.objects.filter(user=operator, object_repr=node.name, change_message__contains="Re-pinned").get()
    assert old in entry.change_message and sshd.host_key_fingerprint in entry.change_message


@pytest.mark.django_db(transaction=True)
def test_node_check_task_runs_on_a_real_worker(make_node, docker_engine, tmp_path):
    """A task through the configured broker (Redis in CI) on a real worker; its result is observed."""
    node = make_node(driver="local", instance_root=str(tmp_path))
    with start_worker(app, pool="solo", perform_ping_check=False):
        result = node_check_task.delay(node.pk).get(timeout=60)
    assert result["ok"] is True and result["node"] == node.name
    node.refresh_from_db()
    assert node.check_ok and node.docker_version == result["docker"]


@pytest.mark.django_db
def test_admin_repin_action_pins_the_presented_key(client, superuser, node_on, ssh_node):
    node = node_on(ssh_node)
    client.force_login(superuser)
    page = client.post("/admin/instances/node/", {"action": "repin_host_keys", "_selected_action": [node.pk]})
    assert ssh_node.host_key_fingerprint in page.content.decode()
    response = client.post(
        "/admin/instances/node/",
        {
            "action": "repin_host_keys",
            "_selected_action": [node.pk],
            "post": "yes",
            f"fingerprint_{node.pk}": ssh_node.host_key_fingerprint,
        },
        follow=True,
    )
    assert response.status_code == 200
    node.refresh_from_db()
    assert node.host_key_fingerprint == ssh_node.host_key_fingerprint
    assert f"host key pinned as {ssh_node.host_key_fingerprint}" in response.content.decode()
