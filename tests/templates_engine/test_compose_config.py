"""Rendered sets are valid compose projects: `docker compose config` accepts every profile combination.

Needs the compose v2 CLI (DESIGN.md §10): skipped without it, a failure when CI=true.
"""

import json
import os
import subprocess
from pathlib import Path

import pytest

from templates_engine import load_template_set, render, write_rendered

from .helpers import DEPLOY_ROOT, SET_PROFILES, context_for

pytestmark = []

TRICKY_SECRET = "we$ird #secret with spaces"


def _config(compose_cli: list[str], directory: Path, *args: str) -> subprocess.CompletedProcess:
    # A clean environment: the shell's IMAGE_TAG or COMPOSE_PROFILES must not leak into the check.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(directory)}
    command = [
        *compose_cli,
        "-f",
        str(directory / "docker-compose.yml"),
        "--env-file",
        str(directory / ".env"),
        "config",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)


def _render_into(directory: Path, name: str, slug: str, port_base: int, profiles: list[str]) -> None:
    template_set = load_template_set(DEPLOY_ROOT, name)
    context = context_for(template_set, slug=slug, port_base=port_base)
    context["instance"]["profiles"] = profiles
    context["secrets"] = {secret: TRICKY_SECRET for secret in template_set.secrets}
    write_rendered(render(template_set, context, include_env=True), directory)
    (directory / "mkdocs").mkdir(exist_ok=True)


@pytest.mark.parametrize(("name", "profiles"), SET_PROFILES)
def test_compose_accepts_the_render(compose_cli, tmp_path, name, profiles):
    _render_into(tmp_path, name, "acme", 18000, profiles)
    result = _config(compose_cli, tmp_path, "-q")
    assert result.returncode == 0, result.stderr
    assert "is not set" not in result.stderr, result.stderr  # every variable comes from .env

    resolved = json.loads(_config(compose_cli, tmp_path, "--format", "json").stdout)
    assert resolved["name"] == "ccp-acme"
    template_set = load_template_set(DEPLOY_ROOT, name)
    for profile in template_set.profiles:
        gated = {svc for svc, spec in resolved["services"].items() if profile in spec.get("profiles", [])}
        assert bool(gated) == (profile in profiles), f"profile {profile} enabled={profile in profiles}"
    secrets_seen = [spec.get("environment", {}).get("POSTGRES_PASSWORD") for spec in resolved["services"].values()]
    if name == "campaign":
        # compose escapes $ as $$ in its output; the value itself arrived intact.
        assert TRICKY_SECRET.replace("$", "$$") in secrets_seen


def test_two_tenants_resolve_to_distinct_projects_and_ports(compose_cli, tmp_path):
    resolved = []
    for slug, base in (("acme", 18000), ("globex", 18100)):
        directory = tmp_path / slug
        _render_into(directory, "campaign", slug, base, ["newsletter", "monitoring"])
        result = _config(compose_cli, directory, "--format", "json")
        assert result.returncode == 0, result.stderr
        resolved.append(json.loads(result.stdout))

    assert resolved[0]["name"] != resolved[1]["name"]
    published = [
        {port["published"] for spec in doc["services"].values() for port in spec.get("ports", [])} for doc in resolved
    ]
    assert published[0] and not published[0] & published[1]
    for doc in resolved:
        assert not [svc for svc, spec in doc["services"].items() if "container_name" in spec]


def test_a_registered_tenant_with_its_own_env_is_valid(compose_cli, tmp_path):
    template_set = load_template_set(DEPLOY_ROOT, "campaign")
    write_rendered(render(template_set, context_for(template_set), include_env=False), tmp_path)
    (tmp_path / ".env").write_text(
        "# written by the install script\n"
        "COMPOSE_PROJECT_NAME=legacy\nDOMAIN=legacy.example.org\nHTTP_PORT=8080\nIMAGE_TAG=v2.9.0\n"
        "POSTGRES_PASSWORD=a\nREDIS_PASSWORD=b\nDJANGO_SECRET_KEY=c\nGRAFANA_ADMIN_PASSWORD=d\n"
    )
    result = _config(compose_cli, tmp_path, "--format", "json")
    assert result.returncode == 0, result.stderr
    images = {spec["image"] for spec in json.loads(result.stdout)["services"].values()}
    assert "registry.example.org/campaign-api:v2.9.0" in images  # .env's IMAGE_TAG beats the release default


def test_a_missing_required_secret_fails_compose_too(compose_cli, tmp_path):
    _render_into(tmp_path, "campaign", "acme", 18000, [])
    env = (tmp_path / ".env").read_text()
    (tmp_path / ".env").write_text("\n".join(line for line in env.splitlines() if "REDIS_PASSWORD" not in line))
    result = _config(compose_cli, tmp_path, "-q")
    assert result.returncode != 0 and "REDIS_PASSWORD" in result.stderr
