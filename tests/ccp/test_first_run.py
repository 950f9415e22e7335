"""First run (issue 13, item 8): the generated admin password is kept 0600 under var/ and announced last."""

import stat

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from instances.management.commands.ensure_admin import Command


@pytest.fixture
def var_dir(settings, tmp_path, monkeypatch):
    monkeypatch.delenv("CCP_ADMIN_PASSWORD", raising=False)
    settings.VAR_DIR = tmp_path
    return tmp_path


@pytest.mark.django_db
def test_a_generated_password_is_printed_and_kept_0600_until_changed(var_dir, capsys):
    call_command("ensure_admin")
    printed = capsys.readouterr().out
    kept = (var_dir / "admin-password").read_text().strip()
    assert kept in printed and stat.S_IMODE((var_dir / "admin-password").stat().st_mode) == 0o600
    assert User.objects.get(username="admin").check_password(kept)

    text = Command().sign_in_text()
    assert kept in text and "changepassword admin" in text

    admin = User.objects.get(username="admin")
    admin.set_password("changed-by-hand")
    admin.save()
    assert kept not in Command().sign_in_text()  # a stale file is never announced


@pytest.mark.django_db
def test_a_password_from_the_environment_is_neither_printed_nor_kept(var_dir, capsys, monkeypatch):
    monkeypatch.setenv("CCP_ADMIN_PASSWORD", "from-env-pw-123")
    call_command("ensure_admin")
    assert "from-env-pw-123" not in capsys.readouterr().out
    assert not (var_dir / "admin-password").exists()
