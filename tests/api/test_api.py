"""The REST API: who may do what, write-only secrets, per-field errors, audit, schema."""

import json

import pytest
from django.contrib.admin.models import LogEntry
from django.core.management import call_command

from instances.models import Instance, Node

pytestmark = pytest.mark.django_db


@pytest.fixture
def payload(make_node):
    node = make_node(name="edge-1")
    return {
        "name": "Acme",
        "slug": "acme",
        "node": node.name,
        "install_dir": "/srv/ccp/acme",
        "ports": {"http": 8080},
        "profiles": "monitoring",
        "secrets": {"EXTRA_TOKEN": "s3cr3t-value-xyz"},
    }


def test_anonymous_gets_401(api):
    response = api(None).get("/api/v1/instances/")
    assert response.status_code == 401
    assert "WWW-Authenticate" in response


def test_viewer_reads_but_cannot_write(api, viewer, make_instance, payload):
    make_instance(slug="visible")
    client = api(viewer)
    listing = client.get("/api/v1/instances/")
    assert listing.status_code == 200
    assert [row["slug"] for row in listing.json()["results"]] == ["visible"]
    assert client.post("/api/v1/instances/", payload, format="json").status_code == 403
    assert client.patch("/api/v1/instances/visible/", {"name": "x"}, format="json").status_code == 403
    assert client.delete("/api/v1/instances/visible/").status_code == 403


def test_user_without_group_cannot_read(api, db):
    from django.contrib.auth.models import User

    nobody = User.objects.create_user("nobody", password="x")
    assert api(nobody).get("/api/v1/instances/").status_code == 403


def test_operator_changes_an_instance_and_it_is_audited(api, operator, make_instance):
    make_instance(slug="acme")
    response = api(operator).patch("/api/v1/instances/acme/", {"domain": "acme.example.org"}, format="json")
    assert response.status_code == 200, response.content
    assert Instance.objects.get(slug="acme").domain == "acme.example.org"
    entry = LogEntry.objects.get(user=operator, object_repr="acme")
    assert entry.is_change() and "domain" in entry.change_message


def test_superuser_creates_an_instance_secrets_are_write_only(api, superuser, payload):
    client = api(superuser)
    response = client.post("/api/v1/instances/", payload, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert "secrets" not in body and "EXTRA_TOKEN" in body["secret_names"]
    stored = Instance.objects.get(slug="acme").get_secrets()
    assert stored["EXTRA_TOKEN"] == "s3cr3t-value-xyz"
    every_response = [response, client.get("/api/v1/instances/acme/"), client.get("/api/v1/instances/")]
    for value in stored.values():
        for resp in every_response:
            assert value not in resp.content.decode()
    assert LogEntry.objects.filter(user=superuser, object_repr="acme", action_flag=1).exists()


def test_validation_errors_are_400_per_field(api, superuser, payload):
    bad = {**payload, "slug": "Bad Slug", "install_dir": "/srv/../etc", "image_tag": "-x"}
    response = api(superuser).post("/api/v1/instances/", bad, format="json")
    assert response.status_code == 400
    assert set(response.json()) >= {"slug", "install_dir", "image_tag"}


def test_port_clash_is_400_on_ports(api, superuser, payload, make_instance):
    make_instance(node=Node.objects.get(name="edge-1"), slug="first", ports={"http": 8080})
    response = api(superuser).post("/api/v1/instances/", payload, format="json")
    assert response.status_code == 400
    assert "8080 (used by first)" in response.json()["ports"][0]


def test_unknown_slug_is_404(api, viewer):
    assert api(viewer).get("/api/v1/instances/nope/").status_code == 404


def test_filters_and_search(api, viewer, make_node, make_instance):
    a, b = make_node(name="alpha"), make_node(name="beta")
    make_instance(node=a, slug="one", is_registered=True)
    make_instance(node=b, slug="two", status="maintenance", domain="two.example.org")
    client = api(viewer)

    def slugs(query: str) -> list[str]:
        return [row["slug"] for row in client.get(f"/api/v1/instances/?{query}").json()["results"]]

    assert slugs("node=alpha") == ["one"]
    assert slugs("status=maintenance") == ["two"]
    assert slugs("is_registered=true") == ["one"]
    assert slugs("search=two.example") == ["two"]


def test_node_private_key_is_write_only(api, superuser):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    pem = (
        ed25519.Ed25519PrivateKey.generate()
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption())
        .decode()
    )
    client = api(superuser)
    response = client.post("/api/v1/nodes/", {"name": "n1", "address": "127.0.0.2", "private_key": pem}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["has_private_key"] is True
    for resp in (response, client.get("/api/v1/nodes/n1/"), client.get("/api/v1/nodes/")):
        assert "PRIVATE KEY" not in resp.content.decode()
    bad = client.post("/api/v1/nodes/", {"name": "n2", "address": "127.0.0.3", "private_key": "nope"}, format="json")
    assert bad.status_code == 400 and "private_key" in bad.json()


def test_schema_has_no_warnings_and_no_secret_examples(tmp_path, make_instance):
    instance = make_instance()
    out = tmp_path / "schema.json"
    call_command("spectacular", "--validate", "--fail-on-warn", "--format", "openapi-json", "--file", str(out))
    schema = json.loads(out.read_text())
    assert "/api/v1/instances/{slug}/" in schema["paths"]
    text = out.read_text()
    for value in instance.get_secrets().values():
        assert value not in text
    read_only = schema["components"]["schemas"]["Instance"]["properties"]
    assert "secrets" not in read_only and "secret_names" in read_only


def test_schema_and_docs_pages_answer(client, viewer):
    client.force_login(viewer)
    assert client.get("/api/schema/").status_code == 200
    docs = client.get("/api/docs/")
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()


def test_healthz_reports_database_and_broker(client):
    response = client.get("/healthz")
    body = response.json()
    assert body["database"] == "ok"
    assert response.status_code == (200 if body["broker"] == "ok" else 503)


def test_healthz_names_the_broker_when_it_is_down(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable: broker"
    assert response.json()["database"] == "ok"


def test_a_node_without_registry_access_names_its_image_source(api, superuser, make_node):
    builder = make_node(name="builder-1")
    client = api(superuser)
    response = client.post(
        "/api/v1/nodes/",
        {"name": "edge-9", "address": "127.0.0.9", "registry_access": False, "image_source": "builder-1"},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["image_source"] == "builder-1" and builder.name == "builder-1"
    refused = client.patch("/api/v1/nodes/edge-9/", {"registry_access": True}, format="json")
    assert refused.status_code == 400 and "image_source" in refused.json()
    itself = client.patch("/api/v1/nodes/edge-9/", {"image_source": "edge-9"}, format="json")
    assert itself.status_code == 400 and "own image source" in str(itself.json())
