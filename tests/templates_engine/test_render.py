"""Rendering: every set and profile combination, strict missing values, safe paths and values."""

import copy
import os
import stat

import pytest

from templates_engine import (
    RenderedFile,
    RenderError,
    UnsafePathError,
    load_template_set,
    parse_env,
    render,
    write_rendered,
)
from templates_engine._yaml import load_yaml
from templates_engine.paths import safe_relpath
from templates_engine.render import env_value

from .helpers import DEPLOY_ROOT, SET_PROFILES, context_for, make_set

pytestmark = []


def _line_of(template_set, source: str, needle: str) -> int:
    lines = (template_set.root / source).read_text().splitlines()
    return next(number for number, line in enumerate(lines, 1) if needle in line)


@pytest.mark.parametrize(("name", "profiles"), SET_PROFILES)
def test_every_set_renders_for_every_profile_combination(name, profiles):
    template_set = load_template_set(DEPLOY_ROOT, name)
    context = context_for(template_set)
    context["instance"]["profiles"] = profiles
    files = render(template_set, context, include_env=True)

    assert list(files) == template_set.managed_paths(include_env=True)
    assert all(isinstance(f, RenderedFile) and f.path == path for path, f in files.items())
    compose = load_yaml(files["docker-compose.yml"].content)
    assert "services" in compose
    env = parse_env(files[".env"].content.decode())
    assert env["COMPOSE_PROFILES"] == ",".join(profiles)
    assert env["COMPOSE_PROJECT_NAME"] == "ccp-acme"
    assert env["IMAGE_TAG"] == "v2.10.3"
    assert files[".env"].mode == 0o600
    assert files["docker-compose.yml"].mode == 0o644


def test_registered_tenants_get_no_env_file(campaign):
    files = render(campaign, context_for(campaign), include_env=False)
    assert ".env" not in files
    assert list(files) == campaign.managed_paths(include_env=False)


def test_the_release_sets_the_default_tag_and_env_overrides_it(campaign):
    compose = render(campaign, context_for(campaign, image_tag="v2.11.0"), include_env=False)["docker-compose.yml"]
    images = {svc["image"] for svc in load_yaml(compose.content)["services"].values()}
    assert "registry.example.org/campaign-api:${IMAGE_TAG:-v2.11.0}" in images
    assert "registry.example.org/campaign-admin:${IMAGE_TAG:-v2.11.0}" in images


def test_static_files_are_copied_byte_for_byte(campaign):
    files = render(campaign, context_for(campaign), include_env=False)
    rules = files["configs/prometheus/rules/campaign.yml"].content
    assert rules == (campaign.root / "configs/prometheus/rules/campaign.yml").read_bytes()
    assert b"{{ $labels.job }}" in rules


def test_a_missing_value_names_variable_file_and_line(campaign):
    context = context_for(campaign)
    del context["instance"]["ports"]["http"]
    with pytest.raises(RenderError) as caught:
        render(campaign, context, include_env=True)
    error = caught.value
    assert error.variable == "instance.ports.http"
    assert error.template == "env.j2"
    assert error.line == _line_of(campaign, "env.j2", "HTTP_PORT=")
    assert f"env.j2, line {error.line}" in error.message and "'instance.ports.http'" in error.message


def test_a_missing_top_level_value_in_the_compose_template(campaign):
    context = context_for(campaign)
    del context["registry"]
    with pytest.raises(RenderError) as caught:
        render(campaign, context, include_env=False)
    assert (caught.value.variable, caught.value.template) == ("registry", "docker-compose.yml.j2")
    assert caught.value.line == _line_of(campaign, "docker-compose.yml.j2", "{{ registry }}")


def test_a_none_value_is_missing_not_the_word_none(campaign):
    context = context_for(campaign)
    context["instance"]["domain"] = None
    with pytest.raises(RenderError, match="'instance.domain'"):
        render(campaign, context, include_env=True)


def test_a_missing_secret_is_named(campaign):
    context = context_for(campaign)
    del context["secrets"]["REDIS_PASSWORD"]
    with pytest.raises(RenderError, match="'secrets.REDIS_PASSWORD'"):
        render(campaign, context, include_env=True)
    render(campaign, context, include_env=False)  # registered tenants need no secrets


def test_a_value_with_a_line_break_cannot_inject_yaml(campaign):
    context = context_for(campaign, image_tag="v1\n  privileged: true")
    with pytest.raises(RenderError, match="single-line") as caught:
        render(campaign, context, include_env=False)
    assert caught.value.template == "docker-compose.yml.j2" and caught.value.line


@pytest.mark.parametrize(
    "secret",
    [
        "plain-Token_1.2",
        "with space",
        "dollar$VAR and ${X}",
        "hash # not a comment",
        'double"quote',
        "back\\slash",
        "=equals=",
        "ünïcode",
    ],
)
def test_env_values_round_trip_through_the_env_parser(secret):
    assert parse_env(f"KEY={env_value(secret)}\n") == {"KEY": secret}


def test_an_env_value_with_a_single_quote_is_refused(campaign):
    context = context_for(campaign)
    context["secrets"]["POSTGRES_PASSWORD"] = "it's"
    with pytest.raises(RenderError, match="single quote") as caught:
        render(campaign, context, include_env=True)
    assert "it's" not in caught.value.message  # never echo a secret


def test_syntax_errors_name_file_and_line(tmp_path):
    root = make_set(tmp_path, sources={"docker-compose.yml.j2": "services:\n  app:\n    image: {{ registry }\n"})
    template_set = load_template_set(root, "custom")
    with pytest.raises(RenderError, match="syntax error") as caught:
        render(template_set, context_for(template_set), include_env=False)
    assert (caught.value.template, caught.value.line) == ("docker-compose.yml.j2", 3)


def test_templates_run_sandboxed(tmp_path):
    evil = "x: {{ registry.__class__.__mro__[1].__subclasses__() }}\n"
    template_set = load_template_set(make_set(tmp_path, sources={"docker-compose.yml.j2": evil}), "custom")
    with pytest.raises(RenderError):
        render(template_set, context_for(template_set), include_env=False)


def test_rendering_does_not_change_the_context(campaign):
    context = context_for(campaign)
    before = copy.deepcopy(context)
    render(campaign, context, include_env=True)
    assert context == before


# --- paths --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["../x", "a/../../x", "/etc/passwd", "~/x", "a//b", "./a", "a/./b", "", "a\\b", "a\x00b", "..", "nginx/\n.conf"],
)
def test_unsafe_paths_are_refused(path):
    with pytest.raises(UnsafePathError):
        safe_relpath(path)


@pytest.mark.parametrize("path", ["docker-compose.yml", ".env", "configs/grafana/provisioning/a.yml", "mkdocs/"])
def test_plain_relative_paths_are_fine(path):
    assert safe_relpath(path) == path


def test_write_rendered_writes_files_with_their_modes(tmp_path, campaign):
    files = render(campaign, context_for(campaign), include_env=True)
    written = write_rendered(files, tmp_path / "out")
    assert len(written) == len(files)
    for path, rendered in files.items():
        target = tmp_path / "out" / path
        assert target.read_bytes() == rendered.content
        assert stat.S_IMODE(target.stat().st_mode) == rendered.mode
    assert not [p for p in (tmp_path / "out").rglob("*.tmp")]


@pytest.mark.parametrize("path", ["../escape.txt", "/tmp/absolute.txt", "a/../../escape.txt"])
def test_write_rendered_refuses_traversal(tmp_path, path):
    with pytest.raises(UnsafePathError):
        write_rendered({path: RenderedFile(path, b"x", 0o644)}, tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists()


def test_write_rendered_does_not_follow_a_symlinked_directory(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "out").mkdir()
    os.symlink(outside, tmp_path / "out" / "nginx")
    with pytest.raises(UnsafePathError, match="symlink"):
        write_rendered({"nginx/nginx.conf": RenderedFile("nginx/nginx.conf", b"x", 0o644)}, tmp_path / "out")
    assert list(outside.iterdir()) == []


def test_write_rendered_replaces_a_symlinked_file_rather_than_its_target(tmp_path):
    target = tmp_path / "victim"
    target.write_text("keep")
    (tmp_path / "out").mkdir()
    os.symlink(target, tmp_path / "out" / ".env")
    with pytest.raises(UnsafePathError):
        write_rendered({".env": RenderedFile(".env", b"x", 0o600)}, tmp_path / "out")
    assert target.read_text() == "keep"


# --- two tenants on one node ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["campaign", "testbed"])
def test_two_instances_on_one_node_do_not_collide(name):
    template_set = load_template_set(DEPLOY_ROOT, name)
    renders = [
        render(template_set, context_for(template_set, slug=slug, port_base=base), include_env=True)
        for slug, base in (("acme", 18000), ("globex", 18100))
    ]
    envs = [parse_env(files[".env"].content.decode()) for files in renders]
    assert envs[0]["COMPOSE_PROJECT_NAME"] != envs[1]["COMPOSE_PROJECT_NAME"]
    ports = [{env[var] for var in template_set.ports.values()} for env in envs]
    assert len(ports[0]) == len(template_set.ports) and not ports[0] & ports[1]

    compose = load_yaml(renders[0]["docker-compose.yml"].content)
    port_variables = {f"${{{var}}}" for var in template_set.ports.values()}
    for service_name, service in compose["services"].items():
        assert "container_name" not in service
        for port in service.get("ports", []):
            host_port = port.rsplit(":", 2)[-2]
            assert host_port in port_variables, f"{service_name} publishes {port} outside the manifest ports"
        if service.get("network_mode") == "host":
            assert service["environment"]["PORT"] in port_variables
    for section in ("volumes", "networks"):
        for item in (compose.get(section) or {}).values():
            assert "name" not in (item or {}), f"a fixed {section} name is shared by every tenant"
