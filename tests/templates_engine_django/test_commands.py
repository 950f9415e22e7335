"""render_instance, preview and check_template_drift: output, exit codes, and secrets never printed."""

from pathlib import Path

import pytest

from instances.management.commands.preview import Command as PreviewCommand
from instances.redaction import REDACTED

from .helpers import APP_SECRET, install, run_command

pytestmark = pytest.mark.django_db

REPO = Path(__file__).resolve().parents[2]
CANONICAL = REPO / "tests" / "fixtures" / "canonical" / "docker-compose.prod.yml"


def assert_no_secret(instance, text: str) -> None:
    for value in instance.get_secrets().values():
        assert value not in text


# --- preview ------------------------------------------------------------------------------------------


def test_preview_of_an_unchanged_tenant_exits_0(testbed_release, make_tenant):
    tenant = make_tenant().instance
    install(tenant)
    run = run_command("preview", tenant.slug)
    assert run.code == 0, run.text
    assert "No changes" in run.out
    assert "unchanged  -            docker-compose.yml" in run.out
    assert_no_secret(tenant, run.text)


def test_preview_with_changes_exits_1_and_shows_a_redacted_diff(testbed_release, make_tenant):
    tenant = make_tenant().instance
    install(tenant)
    old_port = tenant.ports["web"]
    tenant.ports = {**tenant.ports, "web": old_port + 5}
    tenant.set_secrets({**tenant.get_secrets(), "APP_SECRET": "rotated-secret-Zk81"})
    tenant.save()
    # Someone pasted the old secret into a managed config file on the node: the diff must not show it.
    conf = Path(tenant.install_dir, "configs/app.conf")
    conf.write_text(conf.read_text() + f"token = {APP_SECRET}\nnew-token = rotated-secret-Zk81\n")

    run = run_command("preview", tenant.slug)

    assert run.code == 1, run.text
    assert "changed    values-only  .env" in run.out
    assert "changed    values-only  configs/app.conf" in run.out
    assert f"-WEB_PORT={old_port}\n+WEB_PORT={old_port + 5}" in run.out
    assert "+APP_SECRET=[redacted] (changed)" in run.out
    assert APP_SECRET not in run.text and "rotated-secret-Zk81" not in run.text
    assert f"-new-token = {REDACTED}" in run.out
    assert_no_secret(tenant, run.text)


def test_preview_of_a_blocked_registered_tenant_exits_2_naming_the_variable(testbed_release, make_tenant):
    tenant = make_tenant(is_registered=True).instance
    install(tenant)
    env = "COMPOSE_PROJECT_NAME=x\nWEB_PORT=1\nAPI_PORT=2\nDOCS_PORT=3\nAPP_SECRET=registered-own-secret\n"
    Path(tenant.install_dir, ".env").write_text(env)

    run = run_command("preview", tenant.slug)

    assert run.code == 2, run.text
    assert (
        "ERROR: This tenant's .env does not define EXTRA_PORT, which the new compose file needs; "
        "the upgrade is blocked until it is added."
    ) in run.out
    assert "BLOCKED: This tenant's .env does not define EXTRA_PORT" in run.out
    assert "APP_MODE" in run.out  # defaulted (${APP_MODE:-normal}): mentioned, never blocking
    assert "registered-own-secret" not in run.text  # a registered tenant's .env is read, never shown


@pytest.mark.parametrize(
    "args, message",
    [
        (["no-such-tenant"], "There is no instance 'no-such-tenant'."),
        (["{slug}", "--release", "v9.9.9"], "There is no release 'v9.9.9'."),
    ],
)
def test_preview_errors_exit_2_with_one_line(testbed_release, make_tenant, args, message):
    tenant = make_tenant().instance
    run = run_command("preview", *[a.format(slug=tenant.slug) for a in args])
    assert run.code == 2
    assert run.err.strip() == message


def test_a_render_error_exits_2_with_the_engine_message(testbed_release, make_tenant):
    tenant = make_tenant(ports={"web": 30001}).instance  # the testbed set also needs api, docs and extra ports
    run = run_command("preview", tenant.slug)
    assert run.code == 2
    assert "no value for 'instance.ports.api'" in run.err


def test_manage_py_prints_errors_without_a_traceback(testbed_release, capsys):
    with pytest.raises(SystemExit) as exit_info:
        PreviewCommand().run_from_argv(["manage.py", "preview", "no-such-tenant"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.strip() == "CommandError: There is no instance 'no-such-tenant'."
    assert "Traceback" not in err


# --- render_instance ---------------------------------------------------------------------------------


def test_render_instance_writes_the_files_with_secrets_redacted(testbed_release, make_tenant, tmp_path):
    tenant = make_tenant().instance
    out = tmp_path / "out"

    run = run_command("render_instance", tenant.slug, "--out", str(out))

    assert run.code == 0, run.text
    assert {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} == {
        "docker-compose.yml",
        "configs/app.conf",
        ".env",
    }
    assert "0600  .env" in run.out and "0644  docker-compose.yml" in run.out
    env = (out / ".env").read_text()
    assert f"APP_SECRET={REDACTED}" in env
    assert f"COMPOSE_PROJECT_NAME={tenant.compose_project}" in env
    assert (out / ".env").stat().st_mode & 0o777 == 0o600
    assert_no_secret(tenant, run.text)
    for path in out.rglob("*"):
        if path.is_file():
            assert_no_secret(tenant, path.read_text())


def test_render_instance_reveals_secrets_only_when_asked(testbed_release, make_tenant, tmp_path):
    tenant = make_tenant().instance
    run = run_command("render_instance", tenant.slug, "--out", str(tmp_path / "out"), "--reveal-secrets")
    assert run.code == 0
    assert f"APP_SECRET={APP_SECRET}" in (tmp_path / "out" / ".env").read_text()
    assert APP_SECRET not in run.text


def test_render_instance_refuses_a_non_empty_directory_unless_forced(testbed_release, make_tenant, tmp_path):
    tenant = make_tenant().instance
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")

    refused = run_command("render_instance", tenant.slug, "--out", str(out))
    assert refused.code == 2
    assert "is not empty" in refused.err and "--force" in refused.err
    assert not (out / "docker-compose.yml").exists()

    forced = run_command("render_instance", tenant.slug, "--out", str(out), "--force")
    assert forced.code == 0
    assert (out / "docker-compose.yml").exists() and (out / "keep.txt").read_text() == "mine"


def test_render_instance_of_a_registered_tenant_writes_no_env(testbed_release, make_tenant, tmp_path):
    tenant = make_tenant(is_registered=True).instance
    run = run_command("render_instance", tenant.slug, "--out", str(tmp_path / "out"), "--release", "v1.0.0")
    assert run.code == 0
    assert not (tmp_path / "out" / ".env").exists()
    assert "keeps its own" in run.out


def test_render_instance_without_any_release_exits_2(make_tenant, tmp_path):
    tenant = make_tenant().instance
    run = run_command("render_instance", tenant.slug, "--out", str(tmp_path / "out"))
    assert run.code == 2
    assert run.err.strip() == "There is no release yet: add one under Releases first."


# --- check_template_drift ----------------------------------------------------------------------------


def test_drift_check_passes_for_the_shipped_campaign_set():
    run = run_command("check_template_drift", str(CANONICAL), "--set", "campaign")
    assert run.code == 0, run.text
    assert run.out.startswith("No drift")


def test_drift_check_reports_and_exits_1_on_drift(tmp_path):
    drifted = tmp_path / "docker-compose.prod.yml"
    text = CANONICAL.read_text()
    assert "      REDIS_PASSWORD: ${REDIS_PASSWORD:?" in text
    drifted.write_text(
        text.replace(
            "      REDIS_PASSWORD: ${REDIS_PASSWORD:?",
            "      REDIS_TLS: 1\n      REDIS_PASSWORD: ${REDIS_PASSWORD:?",
            1,
        )
    )

    run = run_command("check_template_drift", str(drifted))

    assert run.code == 1
    assert "has drifted from" in run.out
    assert "environment key: REDIS_TLS only in the canonical file" in run.out


@pytest.mark.parametrize(
    "args, message",
    [
        (["/no/such/compose.yml"], "Cannot read /no/such/compose.yml: No such file or directory."),
        ([str(CANONICAL), "--set", "nope"], "Template set 'nope' not found"),
    ],
)
def test_drift_check_errors_exit_2(args, message):
    run = run_command("check_template_drift", *args)
    assert run.code == 2
    assert run.err.startswith(message)
