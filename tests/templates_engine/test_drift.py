"""Drift between the shipped compose template and the canonical production compose file."""

import pytest
import yaml

from templates_engine import check_drift, compare_compose

from .helpers import CANONICAL

pytestmark = []


def _canonical(change=None) -> str:
    document = yaml.safe_load(CANONICAL.read_text())
    if change:
        change(document)
    return yaml.safe_dump(document, sort_keys=False)


def test_the_shipped_set_has_no_drift(campaign):
    report = check_drift(campaign, CANONICAL.read_text(), canonical_label=CANONICAL.name)
    assert not report.has_drift, report.format()
    assert report.format() == f"No drift: template campaign/docker-compose.yml.j2 matches {CANONICAL.name}."


def test_a_service_added_to_the_canonical_file_is_reported(campaign):
    def add_service(doc):
        doc["services"]["search"] = {"image": "opensearchproject/opensearch:2.15.0"}

    report = check_drift(campaign, _canonical(add_service))
    assert [str(item) for item in report.items] == ["service search: service: only in the canonical file"]


def test_a_removed_environment_key_is_reported(campaign):
    def remove_key(doc):
        del doc["services"]["api"]["environment"]["SENTRY_DSN"]

    report = check_drift(campaign, _canonical(remove_key))
    assert [str(item) for item in report.items] == ["service api: environment key: SENTRY_DSN only in the template"]


def test_a_changed_volume_is_reported(campaign):
    def change_volume(doc):
        doc["services"]["mkdocs"]["volumes"] = ["./docs:/docs:ro"]

    report = check_drift(campaign, _canonical(change_volume))
    assert report.has_drift
    assert {str(item) for item in report.items} == {
        "service mkdocs: volume: ./docs:/docs:ro only in the canonical file",
        "service mkdocs: volume: ./mkdocs:/docs:ro only in the template",
    }
    assert "has drifted from" in report.format() and "2 difference(s)" in report.format()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["services"]["postgres"].update(image="postgis/postgis:16-3.4"), "service postgres: image:"),
        (lambda d: d["services"]["nginx"].update(ports=["${HTTP_PORT}:80"]), "service nginx: port:"),
        (lambda d: d["services"]["grafana"].update(profiles=["grafana"]), "service grafana: profile:"),
        (lambda d: d["services"]["admin"].pop("healthcheck"), "service admin: healthcheck: template has test"),
        (lambda d: d["services"]["redis"]["healthcheck"].update(test="redis-cli ping"), "service redis: healthcheck:"),
        (
            lambda d: d["services"]["nginx"]["depends_on"]["mkdocs"].update(condition="service_healthy"),
            "service nginx: depends_on: mkdocs (service_healthy)",
        ),
        (lambda d: d["volumes"].update({"uploads": None}), "top level: named volume: uploads only in the canonical"),
        (lambda d: d["services"].pop("worker"), "service worker: service: only in the template"),
    ],
)
def test_each_aspect_is_compared(campaign, change, expected):
    report = check_drift(campaign, _canonical(change))
    assert any(str(item).startswith(expected) for item in report.items), report.format()


def test_tags_and_registries_are_ignored_but_names_are_not():
    template = "services:\n  api:\n    image: registry.invalid/campaign-api:${IMAGE_TAG:-v0}\n"
    for image, drift in (
        ("registry.example.org/campaign-api:v2.10.3", False),
        ("localhost:5000/campaign-api@sha256:abc", False),
        ("${REGISTRY}/campaign-api:${IMAGE_TAG}", False),
        ("registry.example.org/campaign-backend:v2.10.3", True),
        ("registry.example.org/acme/campaign-api:v2", True),
    ):
        canonical = f"services:\n  api:\n    image: {image}\n"
        assert compare_compose(template, canonical).has_drift is drift, image


def test_a_registry_with_a_namespace_is_stripped_when_given(campaign):
    canonical = _canonical().replace("registry.example.org/", "registry.example.org/acme/")
    assert check_drift(campaign, canonical).has_drift
    assert not check_drift(campaign, canonical, registry="registry.example.org/acme").has_drift


def test_docker_hub_spellings_are_the_same_image():
    template = "services:\n  db:\n    image: postgres:16\n"
    assert not compare_compose(template, "services:\n  db:\n    image: docker.io/library/postgres:16.4\n").has_drift
