"""The fleet dashboard and fleet_status show every instance, running operations and what needs attention."""

import pytest
from django.core.management import call_command

from instances.attention import attention_raise, attention_resolve_by
from instances.models import Attention
from upgrades.choices import UpgradeMode
from upgrades.services import upgrade_request

pytestmark = pytest.mark.django_db


@pytest.fixture
def fleet(make_node, make_instance):
    node = make_node(name="edge-1")
    calm = make_instance(node=node, slug="calm")
    busy = make_instance(node=node, slug="busy")
    troubled = make_instance(node=node, slug="troubled")
    attention_raise(
        instance=troubled,
        reason="Upgrade #9 failed and its rollback failed: health check failed.",
        operation_kind="upgrade",
        operation_id=9,
    )
    # resolved earlier: history, shown nowhere
    resolved = attention_raise(instance=calm, reason="Restore #3 was interrupted when its worker stopped.")
    attention_resolve_by(instance=calm, operation="restore #4 succeeded")
    assert Attention.objects.get(pk=resolved.pk).resolved_at is not None
    upgrade_request(instance=busy, mode=UpgradeMode.IMAGE_ONLY, image_tag="v2")
    return calm, busy, troubled


def test_dashboard_shows_the_fleet(client, viewer, fleet):
    client.force_login(viewer)
    page = client.get("/admin/fleet/").content.decode()
    assert "3 instances on 1 node" in page
    assert "troubled</a>: Upgrade #9 failed" in page and "Restore #3" not in page
    assert "Upgrade #" in page and "on busy" in page
    assert 'href="/admin/fleet/"' in client.get("/admin/").content.decode()


def test_dashboard_needs_the_view_permission(client, db):
    from django.contrib.auth.models import User

    client.force_login(User.objects.create_user("staffonly", password="x", is_staff=True))
    assert client.get("/admin/fleet/").status_code == 403


def test_fleet_status_command(fleet, capsys):
    call_command("fleet_status")
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["INSTANCE", "NODE", "STATUS", "VERSION", "HEALTH", "LAST", "UPGRADE"]
    assert any(line.startswith("busy ") and "v2 pending" in line for line in lines)
    assert "running: upgrade #" in out and "attention: troubled: Upgrade #9 failed" in out
    assert "attention: calm" not in out and "Restore #3" not in out


def test_dashboard_and_instance_list_cost_the_same_queries_for_any_fleet_size(
    client, superuser, make_node, make_instance
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(superuser)
    node = make_node(name="edge-9")

    def queries(url):
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured.captured_queries)

    attention_raise(instance=make_instance(node=node, slug="first"), reason="Look at me.")
    small = queries("/admin/fleet/"), queries("/admin/instances/instance/")
    for n in range(30):
        instance = make_instance(node=node, slug=f"more-{n}")
        if n % 3 == 0:
            attention_raise(instance=instance, reason="Look at me too.")
    assert (queries("/admin/fleet/"), queries("/admin/instances/instance/")) == small
    page = client.get("/admin/fleet/").content.decode()
    assert "31 instances on 1 node" in page and "Needs attention (11)" in page
