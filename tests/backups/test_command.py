"""manage.py backup: foreground, progress per archive, non-zero exit on failure."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from instances.choices import BackupStatus
from instances.models import Backup

pytestmark = pytest.mark.testbed


def test_backup_command_shows_progress_and_takes_the_backup(make_tenant, backup_root):
    tenant = make_tenant()
    out = StringIO()
    call_command("backup", tenant.instance.slug, "--label", "scheduled", stdout=out)
    text = out.getvalue()
    assert "mkdocs.tar.gz: " in text and "config-files.tar.gz: " in text and "streamed" in text
    backup = Backup.objects.get(instance=tenant.instance)
    assert backup.status == BackupStatus.SUCCEEDED and backup.label == "scheduled"
    assert f"done: #{backup.pk}" in text


def test_backup_command_exits_non_zero_when_a_backup_fails(make_tenant, backup_root):
    ok, broken = make_tenant(), make_tenant()
    (broken.path / "mkdocs").chmod(0o000)  # the node account cannot read it: tar fails
    err = StringIO()
    try:
        with pytest.raises(SystemExit) as exit_:
            call_command("backup", ok.instance.slug, broken.instance.slug, stdout=StringIO(), stderr=err)
    finally:
        (broken.path / "mkdocs").chmod(0o755)
    assert exit_.value.code == 1
    assert "failed: mkdocs.tar.gz failed after" in err.getvalue() and "1 of 2 backup(s) failed" in err.getvalue()
    assert Backup.objects.get(instance=ok.instance).status == BackupStatus.SUCCEEDED
    assert not [p for p in backup_root.rglob("*.partial")]


def test_backup_command_needs_slugs_or_all(db):
    with pytest.raises(CommandError):
        call_command("backup")
    with pytest.raises(CommandError, match="No instance"):
        call_command("backup", "no-such-tenant")
