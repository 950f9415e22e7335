"""GET /api/v1/instances/{slug}/render/ and /preview/: shapes, permissions, redaction, errors."""

import json
from pathlib import Path

import pytest

from instances.redaction import REDACTED

from .helpers import APP_SECRET, install

pytestmark = pytest.mark.django_db


def body_text(response) -> str:
    return json.dumps(response.json())


def test_render_is_redacted_for_a_viewer(api, viewer, testbed_release, make_tenant):
    tenant = make_tenant().instance
    response = api(viewer).get(f"/api/v1/instances/{tenant.slug}/render/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["instance"] == tenant.slug and body["release"] == "v1.0.0" and body["template_set"] == "testbed"
    assert body["secrets_redacted"] is True
    files = {f["path"]: f for f in body["files"]}
    assert set(files) == {"docker-compose.yml", "configs/app.conf", ".env"}
    assert files[".env"]["mode"] == "0600" and files["docker-compose.yml"]["mode"] == "0644"
    assert f"APP_SECRET={REDACTED}" in files[".env"]["content"]
    for value in tenant.get_secrets().values():
        assert value not in body_text(response)


def test_render_is_redacted_for_an_operator_too(api, operator, testbed_release, make_tenant):
    tenant = make_tenant().instance
    response = api(operator).get(f"/api/v1/instances/{tenant.slug}/render/")
    assert response.status_code == 200
    assert APP_SECRET not in body_text(response)


def test_render_shows_secrets_to_a_superuser(api, superuser, testbed_release, make_tenant):
    tenant = make_tenant().instance
    response = api(superuser).get(f"/api/v1/instances/{tenant.slug}/render/", {"release": "v1.0.0"})
    assert response.status_code == 200
    assert response.json()["secrets_redacted"] is False
    env = next(f for f in response.json()["files"] if f["path"] == ".env")
    assert f"APP_SECRET={APP_SECRET}" in env["content"]
    from django.contrib.admin.models import LogEntry

    entry = LogEntry.objects.get(user=superuser, object_repr=tenant.slug)
    assert "with secret values revealed" in entry.change_message and APP_SECRET not in entry.change_message


def test_preview_reports_changes_coverage_and_hash(api, viewer, testbed_release, make_tenant):
    tenant = make_tenant().instance
    install(tenant)
    tenant.ports = {**tenant.ports, "api": tenant.ports["api"] + 7}
    tenant.save()

    response = api(viewer).get(f"/api/v1/instances/{tenant.slug}/preview/")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["has_changes"] is True and body["kind"] == "values-only"
    assert body["blocked"] is False and body["blocked_reason"] == ""
    assert len(body["preview_hash"]) == 64
    files = {f["path"]: f for f in body["files"]}
    assert files[".env"]["status"] == "changed" and files[".env"]["kind"] == "values-only"
    assert f"+API_PORT={tenant.ports['api']}" in files[".env"]["diff"]
    assert files["docker-compose.yml"] == {
        "path": "docker-compose.yml",
        "status": "unchanged",
        "kind": "none",
        "diff": "",
    }
    assert body["orphaned"] == []
    assert body["coverage"]["required_missing"] == []
    assert "APP_MODE" in body["coverage"]["defaulted_missing"]
    assert body["coverage"]["notes"]


def test_preview_never_shows_a_secret_even_to_a_superuser(api, superuser, testbed_release, make_tenant):
    tenant = make_tenant().instance
    install(tenant)
    conf = Path(tenant.install_dir, "configs/app.conf")
    conf.write_text(conf.read_text() + f"leaked = {APP_SECRET}\n")
    tenant.set_secrets({**tenant.get_secrets(), "APP_SECRET": "the-new-one-xyz123"})
    tenant.save()

    response = api(superuser).get(f"/api/v1/instances/{tenant.slug}/preview/")

    assert response.status_code == 200
    text = body_text(response)
    assert APP_SECRET not in text and "the-new-one-xyz123" not in text
    assert "APP_SECRET=[redacted] (changed)" in text and f"leaked = {REDACTED}" in text


def test_preview_of_a_blocked_registered_tenant(api, viewer, testbed_release, make_tenant):
    tenant = make_tenant(is_registered=True).instance
    install(tenant)
    Path(tenant.install_dir, ".env").write_text(
        "COMPOSE_PROJECT_NAME=x\nWEB_PORT=1\nAPI_PORT=2\nDOCS_PORT=3\nAPP_SECRET=own-secret-abcdef\n"
    )
    body = api(viewer).get(f"/api/v1/instances/{tenant.slug}/preview/").json()
    assert body["blocked"] is True
    assert body["coverage"]["required_missing"] == ["EXTRA_PORT"]
    assert "does not define EXTRA_PORT" in body["blocked_reason"]
    assert "APP_MODE" not in body["coverage"]["required_missing"]


@pytest.mark.parametrize("endpoint", ["render", "preview"])
def test_unknown_release_is_a_readable_400(api, viewer, testbed_release, make_tenant, endpoint):
    tenant = make_tenant().instance
    response = api(viewer).get(f"/api/v1/instances/{tenant.slug}/{endpoint}/", {"release": "v9.9.9"})
    assert response.status_code == 400
    assert response.json() == {"detail": "There is no release 'v9.9.9'."}


def test_an_unreachable_node_is_a_readable_502(api, viewer, testbed_release, make_node, make_tenant):
    node = make_node(driver="ssh", address="127.0.0.1", ssh_port=1)  # no key stored, no key file
    tenant = make_tenant(node=node).instance
    response = api(viewer).get(f"/api/v1/instances/{tenant.slug}/preview/")
    assert response.status_code == 502
    assert "has neither a stored private key nor a key file" in response.json()["detail"]


def test_anonymous_and_unknown_instance(api, viewer, testbed_release, make_tenant):
    tenant = make_tenant().instance
    assert api(None).get(f"/api/v1/instances/{tenant.slug}/preview/").status_code == 401
    assert api(viewer).get("/api/v1/instances/nope/render/").status_code == 404


def test_schema_documents_both_endpoints():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    for endpoint, component in (("render", "InstanceRender"), ("preview", "InstancePreview")):
        operation = schema["paths"][f"/api/v1/instances/{{slug}}/{endpoint}/"]["get"]
        assert [p["name"] for p in operation["parameters"] if p["in"] == "query"] == ["release"]
        assert operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(component)
