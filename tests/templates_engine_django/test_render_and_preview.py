"""The bridge between instances and templates_engine: isolation of tenants on one node, env coverage."""

from pathlib import Path

import pytest

from instances.preview import instance_preview, instance_render
from instances.selectors import instance_preview_report
from templates_engine import ChangeKind, FileStatus, parse_env
from templates_engine._yaml import load_yaml

from .helpers import install

pytestmark = pytest.mark.django_db


def test_two_instances_on_one_node_share_no_project_name_or_port(campaign_release, make_node, make_instance):
    node = make_node(driver="local")
    first = make_instance(node=node, ports={"http": 18080}, domain="a.example.org")
    second = make_instance(node=node, ports={"http": 18081}, domain="b.example.org")

    envs, composes = [], []
    for tenant in (first, second):
        _, template_set, files = instance_render(instance=tenant, release=campaign_release)
        envs.append(parse_env(files[template_set.env_file].content.decode()))
        composes.append(load_yaml(files[template_set.compose_file].content))

    assert envs[0]["COMPOSE_PROJECT_NAME"] == first.compose_project
    assert envs[1]["COMPOSE_PROJECT_NAME"] == second.compose_project
    assert first.compose_project != second.compose_project
    assert (envs[0]["HTTP_PORT"], envs[1]["HTTP_PORT"]) == ("18080", "18081")
    for compose in composes:
        assert "name" not in compose  # the project name comes from each tenant's .env
        for service in compose["services"].values():
            assert "container_name" not in service
            # published ports come from .env, never a number fixed in the template
            assert all("${" in str(port) for port in service.get("ports") or [])


def test_release_version_string_and_default(testbed_release, campaign_release, make_tenant):
    tenant = make_tenant().instance
    assert instance_render(instance=tenant)[0] == testbed_release  # the fleet default
    assert instance_render(instance=tenant, release="v1.0.0")[0] == testbed_release
    assert instance_render(instance=tenant, release="")[0] == testbed_release


def test_registered_tenant_missing_a_required_variable_is_blocked(testbed_release, make_tenant):
    tenant = make_tenant(is_registered=True).instance
    install(tenant)
    # No EXTRA_PORT (required by the set) and no APP_MODE (the compose file has a default for it).
    Path(tenant.install_dir, ".env").write_text(
        "COMPOSE_PROJECT_NAME=x\nWEB_PORT=1\nAPI_PORT=2\nDOCS_PORT=3\nAPP_SECRET=s3cret-of-its-own\n"
    )

    preview = instance_preview(instance=tenant)

    assert preview.blocked
    assert preview.coverage.required_missing == ["EXTRA_PORT"]
    assert "APP_MODE" in preview.coverage.defaulted_missing
    assert "EXTRA_PORT" in preview.blocked_reason and "APP_MODE" not in preview.blocked_reason
    assert ".env" not in preview.files  # never rendered for a registered tenant
    assert not preview.has_changes


def test_registered_tenant_without_any_env_file_is_blocked(testbed_release, make_tenant):
    tenant = make_tenant(is_registered=True).instance
    install(tenant)
    report = instance_preview_report(instance=tenant)
    assert report.blocked
    assert "has no .env file" in report.blocked_reason
    assert report.notes[0].level == "error"


def test_panel_provisioned_tenant_is_never_blocked_by_coverage(testbed_release, make_tenant):
    tenant = make_tenant().instance
    report = instance_preview_report(instance=tenant)  # nothing installed yet
    assert not report.blocked
    assert report.coverage.required_missing == []
    assert {f.status for f in report.files} == {FileStatus.MISSING}  # managed by the set, absent
    assert report.kind == ChangeKind.STRUCTURAL


def test_preview_hash_follows_the_node(testbed_release, make_tenant):
    tenant = make_tenant().instance
    install(tenant)
    before = instance_preview(instance=tenant).preview_hash
    assert instance_preview(instance=tenant).preview_hash == before
    Path(tenant.install_dir, "configs/app.conf").write_text("edited on the node\n")
    assert instance_preview(instance=tenant).preview_hash != before
