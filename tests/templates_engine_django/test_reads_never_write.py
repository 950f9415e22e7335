"""Reads never write (issue 11): a render or preview of a provisioned instance that lacks a secret stores
nothing and shows "will be generated"; generating is an explicit, audited operator action.

The instances here have their secrets removed after creation: the shape of an instance whose new
release's template set declares a secret it never had.
"""

import logging

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from instances.models import Instance
from instances.preview import instance_preview
from instances.preview_runs import preview_run_execute, preview_run_request
from instances.secrets import pending_placeholder

from .helpers import install, run_command

PLACEHOLDER = pending_placeholder("APP_SECRET")


def stored_column(instance) -> str:
    """The encrypted secrets column as the database holds it (not the object in memory)."""
    return Instance.objects.values_list("secrets_encrypted", flat=True).get(pk=instance.pk)


def secret_log_rows() -> list[str]:
    return [m for m in LogEntry.objects.values_list("change_message", flat=True) if "secret" in m.lower()]


@pytest.fixture
def without_secrets(make_tenant):
    def make(**fields):
        tenant = make_tenant(**fields).instance
        install(tenant)  # the node has the files of before, with the old secret
        tenant.set_secrets({})
        tenant.save()
        return tenant

    return make


@pytest.mark.django_db
def test_render_and_preview_reads_store_nothing_and_show_will_be_generated(
    api, viewer, operator, superuser, client, testbed_release, without_secrets, tmp_path, caplog
):
    tenant = without_secrets()
    before, rows_before = stored_column(tenant), secret_log_rows()
    caplog.set_level(logging.DEBUG)

    render = api(operator).get(f"/api/v1/instances/{tenant.slug}/render/")
    assert render.status_code == 200, render.content
    assert render.json()["secrets_to_generate"] == ["APP_SECRET"]
    env = next(f["content"] for f in render.json()["files"] if f["path"] == ".env")
    assert f"APP_SECRET={PLACEHOLDER}" in env

    previews = [api(viewer).get(f"/api/v1/instances/{tenant.slug}/preview/") for _ in range(2)]
    for preview in previews:
        assert preview.status_code == 200, preview.content
        body = preview.json()
        assert body["secrets_to_generate"] == ["APP_SECRET"]
        assert any(note.startswith("Will be generated: APP_SECRET") for note in body["coverage"]["notes"])
    # the placeholder, not a random value, is in the hash: the same read twice gives the same hash
    assert previews[0].json()["preview_hash"] == previews[1].json()["preview_hash"]
    assert previews[0].json()["preview_hash"] == instance_preview(instance=tenant).preview_hash

    client.force_login(viewer)
    page = client.get(reverse("admin:instances_instance_preview", args=[tenant.pk]))
    assert page.status_code == 200
    assert "<code>APP_SECRET</code>: will be generated" in page.content.decode()

    assert run_command("preview", tenant.slug).code in (0, 1)
    out = run_command("render_instance", tenant.slug, "--out", str(tmp_path / "out"))
    assert out.code == 0, out.text
    assert "Will be generated: APP_SECRET" in out.out
    assert f"APP_SECRET={PLACEHOLDER}" in (tmp_path / "out" / ".env").read_text()

    # A user who may reveal secrets reads the render too: still nothing stored (their audit row is about
    # having seen values, which exist only as placeholders here).
    assert api(superuser).get(f"/api/v1/instances/{tenant.slug}/render/").status_code == 200

    assert stored_column(tenant) == before == ""
    assert [r for r in secret_log_rows() if r not in rows_before and "revealed" not in r] == []
    assert not [r for r in caplog.records if "Generated" in r.getMessage()]


@pytest.mark.django_db(transaction=True)
def test_multi_instance_preview_run_stores_no_secret(testbed_release, without_secrets):
    tenants = [without_secrets(), without_secrets()]
    before = [stored_column(t) for t in tenants]
    run = preview_run_request(instance_ids=[t.pk for t in tenants], release=testbed_release)
    assert preview_run_execute(run_id=run.pk) == "succeeded"
    run.refresh_from_db()
    assert [run.results[str(t.pk)]["report"]["secrets_to_generate"] for t in tenants] == [["APP_SECRET"]] * 2
    assert [stored_column(t) for t in tenants] == before == ["", ""]
    assert secret_log_rows() == []


@pytest.mark.django_db
def test_generate_missing_secrets_through_the_api_is_explicit_and_audited(
    api, viewer, operator, testbed_release, without_secrets, caplog
):
    tenant = without_secrets()
    caplog.set_level(logging.INFO)
    url = f"/api/v1/instances/{tenant.slug}/generate-secrets/"
    assert api(viewer).post(url).status_code == 403
    assert stored_column(tenant) == ""

    response = api(operator).post(url)
    assert response.status_code == 200, response.content
    assert response.json() == {"generated": ["APP_SECRET"]}
    tenant.refresh_from_db()
    value = tenant.get_secrets()["APP_SECRET"]
    assert len(value) == 40 and stored_column(tenant) != ""
    entry = LogEntry.objects.get(object_id=str(tenant.pk), change_message__contains="Generated")
    assert entry.user == operator and "APP_SECRET" in entry.change_message
    texts = [response.content.decode(), entry.change_message, *(r.getMessage() for r in caplog.records)]
    assert any("APP_SECRET" in t for t in texts[2:])  # logged by name
    assert all(value not in t for t in texts)

    # now the preview uses the stored value: nothing more to generate, and a second POST generates nothing
    assert api(viewer).get(f"/api/v1/instances/{tenant.slug}/preview/").json()["secrets_to_generate"] == []
    assert api(operator).post(url).json() == {"generated": []}
    tenant.refresh_from_db()
    assert tenant.get_secrets()["APP_SECRET"] == value


@pytest.mark.django_db
def test_generate_missing_secrets_admin_action(client, operator, testbed_release, without_secrets, make_tenant):
    tenant, registered = without_secrets(), make_tenant(is_registered=True).instance
    client.force_login(operator)
    response = client.post(
        reverse("admin:instances_instance_changelist"),
        {"action": "generate_missing_secrets", "_selected_action": [tenant.pk, registered.pk]},
        follow=True,
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert f"Generated APP_SECRET for {tenant}." in page and "Registered instances keep their own .env" in page
    tenant.refresh_from_db()
    value = tenant.get_secrets()["APP_SECRET"]
    assert value and value not in page
    assert stored_column(registered) == ""
    assert LogEntry.objects.filter(object_id=str(tenant.pk), change_message__contains="APP_SECRET").count() == 1


def test_placeholder_names_the_secret_and_needs_no_quoting_in_a_env_file():
    assert PLACEHOLDER.replace("_", "").isalnum() and "APP_SECRET" in PLACEHOLDER
