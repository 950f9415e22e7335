"""Loading and validating template sets, and the consistency of the shipped ones."""

import re
from pathlib import Path

import pytest

from templates_engine import (
    TemplateSetError,
    clear_template_set_cache,
    compose_variables,
    env_coverage,
    list_template_sets,
    load_template_set,
    parse_env,
    render,
)
from templates_engine._yaml import load_yaml

from .helpers import DEPLOY_ROOT, context_for, make_set

pytestmark = []


@pytest.fixture(autouse=True)
def _fresh_cache():
    yield
    clear_template_set_cache()


def test_lists_the_shipped_sets():
    assert list_template_sets(DEPLOY_ROOT) == ["campaign", "testbed"]


def test_loading_is_cached():
    assert load_template_set(DEPLOY_ROOT, "campaign") is load_template_set(DEPLOY_ROOT, "campaign")


@pytest.mark.parametrize("name", ["../campaign", "Campaign", "", "a/b", ".hidden", "campaign "])
def test_invalid_set_names_are_refused(name):
    with pytest.raises(TemplateSetError, match="Invalid template set name"):
        load_template_set(DEPLOY_ROOT, name)


def test_unknown_set_is_a_readable_error():
    with pytest.raises(TemplateSetError, match="'nope' not found"):
        load_template_set(DEPLOY_ROOT, "nope")


def test_a_valid_custom_set_loads(tmp_path):
    files = {"docker-compose.yml": "docker-compose.yml.j2", "bin/x.sh": {"source": "x.sh", "mode": "0755"}}
    template_set = load_template_set(make_set(tmp_path, sources={"x.sh": "echo\n"}, files=files), "custom")
    assert [(f.path, f.mode, f.is_template) for f in template_set.files] == [
        ("docker-compose.yml", 0o644, True),
        ("bin/x.sh", 0o755, False),
    ]
    assert template_set.managed_paths(include_env=True) == ["docker-compose.yml", "bin/x.sh", ".env"]
    assert template_set.managed_paths(include_env=False) == ["docker-compose.yml", "bin/x.sh"]


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        ({"colour": "blue"}, "unknown key"),
        ({"name": "other"}, "'name' is 'other'"),
        ({"files": {"../evil.yml": "docker-compose.yml.j2", "docker-compose.yml": "docker-compose.yml.j2"}}, "'..'"),
        (
            {"files": {"/etc/cron.d/x": "docker-compose.yml.j2", "docker-compose.yml": "docker-compose.yml.j2"}},
            "only paths relative",
        ),
        ({"files": {"docker-compose.yml": "../../etc/passwd"}}, "'..'"),
        ({"files": {"docker-compose.yml": "nothing.j2"}}, "does not exist"),
        (
            {"files": {"docker-compose.yml": "docker-compose.yml.j2", "mkdocs/index.md": "env.j2"}},
            "lies in protected path 'mkdocs/'",
        ),
        ({"compose_file": "compose.yml"}, "is not one of 'files'"),
        ({"env_file": "docker-compose.yml"}, "must not also be listed"),
        ({"files": {"docker-compose.yml": {"source": "docker-compose.yml.j2", "mode": "0999"}}}, "invalid mode"),
        ({"secrets": ["not-a-name"]}, "invalid name"),
        ({"ports": {"http": "HTTP_PORT"}, "health": [{"port": "https", "path": "/"}]}, "not one of 'ports'"),
    ],
)
def test_invalid_manifests_are_refused(tmp_path, manifest, message):
    root = make_set(tmp_path, **manifest)
    with pytest.raises(TemplateSetError, match=re.escape(message)) as caught:
        load_template_set(root, "custom")
    assert "Template set 'custom'" in caught.value.message


def test_a_source_symlinked_out_of_the_set_is_refused(tmp_path):
    outside = tmp_path / "secret.txt"
    outside.write_text("root:x:0:0\n")
    root = make_set(tmp_path / "sets", files={"docker-compose.yml": "docker-compose.yml.j2", "leak.txt": "leak.txt"})
    (root / "custom" / "leak.txt").symlink_to(outside)
    with pytest.raises(TemplateSetError, match="resolves outside the template set"):
        load_template_set(root, "custom")


def test_health_urls_follow_ports_and_profiles(testbed):
    ports = {"web": 18001, "api": 18002, "docs": 18003, "extra": 18004}
    assert testbed.health_urls(ports) == [
        "http://127.0.0.1:18001/health",
        "http://127.0.0.1:18002/health",
        "http://127.0.0.1:18003/health",
    ]
    assert testbed.health_urls(ports, ["extra"])[-1] == "http://127.0.0.1:18004/health"


# --- the shipped sets --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["campaign", "testbed"])
def test_every_file_of_a_set_is_in_its_manifest(name):
    template_set = load_template_set(DEPLOY_ROOT, name)
    on_disk = {str(p.relative_to(template_set.root)) for p in template_set.root.rglob("*") if p.is_file()}
    listed = {"manifest.yml", template_set.env_template, *(f.source for f in template_set.files)}
    assert on_disk == listed


@pytest.mark.parametrize("name", ["campaign", "testbed"])
def test_manifest_matches_the_compose_file(name):
    template_set = load_template_set(DEPLOY_ROOT, name)
    files = render(template_set, context_for(template_set), include_env=True)
    compose_text = files[template_set.compose_file].content.decode()
    compose = load_yaml(compose_text)

    used_profiles = {p for service in compose["services"].values() for p in service.get("profiles", [])}
    assert used_profiles == set(template_set.profiles)
    required = {ref.name for ref in compose_variables(compose_text) if ref.required}
    assert required <= set(template_set.required_env)
    assert set(template_set.secrets) <= set(template_set.required_env)
    assert set(template_set.ports.values()) <= set(template_set.required_env)

    env = parse_env(files[template_set.env_file].content.decode())
    assert set(template_set.required_env) | {"COMPOSE_PROFILES", "IMAGE_TAG"} <= set(env)
    coverage = env_coverage(compose_text, env, also_required=template_set.required_env)
    assert coverage.required_missing == []


@pytest.mark.parametrize("name", ["campaign", "testbed"])
def test_compose_templates_follow_the_house_rules(name):
    template_set = load_template_set(DEPLOY_ROOT, name)
    source = (template_set.root / "docker-compose.yml.j2").read_text()
    assert "container_name" not in source, "a fixed container_name stops two tenants sharing a node"
    assert "{%" not in source, "optional services are compose profiles, not template ifs"
    expressions = set(re.findall(r"{{.*?}}", source))
    assert expressions <= {"{{ registry }}", "{{ image_tag }}", "{{ release.version }}"}
    files = render(template_set, context_for(template_set), include_env=False)
    compose = load_yaml(files["docker-compose.yml"].content)
    for service_name, service in compose["services"].items():
        assert "healthcheck" in service, f"{service_name} has no healthcheck"
        if service["image"].startswith("registry.example.org/"):
            assert re.fullmatch(r"registry\.example\.org/[\w/-]+:\$\{IMAGE_TAG:-v2\.10\.3\}", service["image"])
        for port in service.get("ports", []):
            assert re.fullmatch(r"(\$\{\w+(:-[\d.]+)?\}:)?\$\{\w+\}:\d+", port), f"{service_name}: literal port {port}"


def test_campaign_is_the_production_stack(campaign):
    compose = load_yaml(render(campaign, context_for(campaign), include_env=False)["docker-compose.yml"].content)
    services = compose["services"]
    assert len(services) >= 10
    assert {
        "postgres",
        "redis",
        "api",
        "admin",
        "worker",
        "nginx",
        "mkdocs",
        "newsletter",
        "prometheus",
        "grafana",
        "alertmanager",
    } <= set(services)
    assert services["newsletter"]["profiles"] == ["newsletter"]
    for name in ("prometheus", "grafana", "alertmanager"):
        assert services[name]["profiles"] == ["monitoring"]
    assert "./mkdocs:/docs:ro" in services["mkdocs"]["volumes"]
    assert services["api"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert set(compose["volumes"]) >= {"postgres-data", "redis-data"}
    assert campaign.protected_paths == ("mkdocs/",)
    assert set(campaign.secrets) >= {"POSTGRES_PASSWORD", "DJANGO_SECRET_KEY"}


def test_testbed_is_host_networked_busybox(testbed):
    compose = load_yaml(render(testbed, context_for(testbed), include_env=False)["docker-compose.yml"].content)
    services = compose["services"]
    assert {"web", "api", "docs"} <= set(services)
    for name, service in services.items():
        assert service["image"] == "registry.example.org/ccp-test/app:${IMAGE_TAG:-v2.10.3}"
        assert service["network_mode"] == "host"
        assert service["init"] is True
        assert "command" not in service
        assert service["healthcheck"]["test"] == ["CMD-SHELL", "wget -q -O- http://127.0.0.1:$$PORT/health"]
        assert service["healthcheck"]["interval"] == "1s"
        assert re.fullmatch(r"\$\{[A-Z]+_PORT\}", service["environment"]["PORT"]), name
    assert "./mkdocs:/www/docs:ro" in services["docs"]["volumes"]
    assert services["extra"]["profiles"] == ["extra"]
    assert testbed.secrets == ("APP_SECRET",)
    assert Path(testbed.root / "configs" / "app.conf").is_file()
