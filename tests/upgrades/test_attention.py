"""The attention flag's lifecycle (issue 10, item 10): raised by a real failure on the node, resolved by an
operator (API or admin, with a note, audited) or by a later successful upgrade, shown only while open."""

import pytest
from django.contrib.admin.models import LogEntry
from django.core.management import call_command

from instances.models import Attention
from upgrades import hooks

from .helpers import quick, registry_id, wait_final

pytestmark = [pytest.mark.testbed, pytest.mark.django_db(transaction=True)]


def flag_by_a_failed_rollback(tenant, after_up) -> tuple[int, bytes]:
    """A Quick upgrade whose rollback fails too (its compose file breaks mid-way): the instance is flagged.
    Returns the upgrade's id and the compose file as it was, to repair the tenant by hand afterwards."""
    compose = tenant.path / "docker-compose.yml"
    good = compose.read_bytes()

    page = tenant.path / "mkdocs" / "index.md"
    content = page.read_bytes()

    def break_compose(ctx):
        page.write_bytes(b"tampered\n")  # the upgrade fails ...
        compose.write_text(compose.read_text().replace("services:", "services: [broken"))  # ... and its rollback

    after_up(break_compose)
    upgrade = wait_final(quick(tenant, "v2"))
    assert upgrade.status == "failed" and "Rollback failed too" in upgrade.error
    hooks.clear()
    page.write_bytes(content)
    return upgrade.pk, good


def test_10_operator_acknowledges_with_a_note_through_the_api(
    make_tenant, celery_worker_thread, after_up, api, operator, capsys
):
    tenant = make_tenant()
    failed_id, good = flag_by_a_failed_rollback(tenant, after_up)
    record = Attention.objects.get(instance=tenant.instance)
    assert (record.operation_kind, record.operation_id, record.resolved_at) == ("upgrade", failed_id, None)
    client = api(operator)
    slug = tenant.instance.slug
    assert (
        f"Upgrade #{failed_id} failed and its rollback failed"
        in client.get(f"/api/v1/instances/{slug}/").json()["attention"]
    )
    listed = client.get("/api/v1/instances/?needs_attention=true").json()["results"]
    assert [i["slug"] for i in listed] == [slug]
    call_command("fleet_status")
    assert f"attention: {slug}" in capsys.readouterr().out

    # The operator repairs the node by hand, then says so.
    (tenant.path / "docker-compose.yml").write_bytes(good)
    assert tenant.compose("up", "-d", "--wait").returncode == 0
    refused = client.post(f"/api/v1/instances/{slug}/acknowledge/", {"note": ""}, format="json")
    assert refused.status_code == 400
    response = client.post(
        f"/api/v1/instances/{slug}/acknowledge/",
        {"note": "compose file restored from git, stack up on v2"},
        format="json",
    )

    assert response.status_code == 200, response.content
    assert response.json()["attention"] == "" and response.json()["attention_records"] == []
    record.refresh_from_db()
    assert record.resolved_by == operator and record.resolution == "compose file restored from git, stack up on v2"
    assert LogEntry.objects.filter(
        object_id=str(tenant.instance.pk), user=operator, change_message__contains="Acknowledged 1 attention record(s)"
    ).exists()
    assert client.get("/api/v1/instances/?needs_attention=true").json()["results"] == []
    call_command("fleet_status")
    assert "attention:" not in capsys.readouterr().out
    again = client.post(f"/api/v1/instances/{slug}/acknowledge/", {"note": "again"}, format="json")
    assert again.status_code == 400 and "needs no attention" in again.json()["detail"]
    assert tenant.all_healthy()


def test_10_a_later_successful_upgrade_resolves_it_and_says_so(
    make_tenant, celery_worker_thread, after_up, docker_engine, client, operator
):
    tenant = make_tenant()
    failed_id, good = flag_by_a_failed_rollback(tenant, after_up)
    client.force_login(operator)
    changelist = client.get("/admin/instances/instance/?needs_attention=yes").content.decode()
    assert tenant.instance.slug in changelist and f"Upgrade #{failed_id} failed" in changelist
    (tenant.path / "docker-compose.yml").write_bytes(good)  # repaired by hand, not acknowledged

    upgrade = wait_final(quick(tenant, "v3"))

    assert upgrade.status == "succeeded", upgrade.error
    assert set(tenant.running_image_ids().values()) == {registry_id(docker_engine, "v3")} and tenant.all_healthy()
    record = Attention.objects.get(instance=tenant.instance)
    assert record.resolved_at is not None and record.resolved_by is None
    assert record.resolution == f"Resolved automatically: Quick upgrade (image only) #{upgrade.pk} succeeded."
    assert "resolved 1 open attention record" in upgrade.steps.get(name="resolve attention").output
    tenant.instance.refresh_from_db()
    assert tenant.instance.attention == ""
    assert tenant.instance.slug not in client.get("/admin/instances/instance/?needs_attention=yes").content.decode()
    assert f"Upgrade #{failed_id} failed" not in client.get("/admin/fleet/").content.decode()


def test_10_admin_action_acknowledges_with_a_note(make_tenant, celery_worker_thread, after_up, client, operator):
    tenant = make_tenant()
    flag_by_a_failed_rollback(tenant, after_up)
    client.force_login(operator)
    form = {"action": "acknowledge_attention", "_selected_action": [tenant.instance.pk]}
    page = client.post("/admin/instances/instance/", form)
    assert page.status_code == 200 and b"Acknowledge and resolve" in page.content
    client.post("/admin/instances/instance/", {**form, "post": "yes", "note": "checked on the node"})

    record = Attention.objects.get(instance=tenant.instance)
    assert record.resolved_by == operator and record.resolution == "checked on the node"
