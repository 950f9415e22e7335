"""The protection check: a stat listing compared by digest (and, with the setting, a full content hash).

Fast tests read listings as data; testbed tests tamper with a real tenant's content during a real upgrade.
"""

import os
import subprocess
import uuid

import pytest

from instances.drivers import driver_for
from upgrades.choices import UpgradeMode, UpgradeStatus
from upgrades.modes.protection import CONTENT, STAT, changed_paths, parse_snapshot, snapshot_argv, take_snapshot
from upgrades.runner import StepError
from upgrades.services import upgrade_request, upgrade_run

from .helpers import quick, wait_final


def stat_listing(*entries: tuple[str, str, str]) -> bytes:
    return b"".join(f"{path} {kind} 644 1000 1000 12 {size} 1.5 1.5\0".encode() for path, kind, size in entries)


def test_changed_paths_names_entries_not_the_directories_they_were_added_to():
    before = stat_listing(("mkdocs/", "d", "4096"), ("mkdocs/a b.md", "f", "3"), ("mkdocs/gone.md", "f", "1"))
    after = stat_listing(("mkdocs/", "d", "4096")).replace(b"1.5 1.5", b"1.5 2.5") + stat_listing(
        ("mkdocs/a b.md", "f", "4"), ("mkdocs/new.md", "f", "1")
    )
    assert changed_paths(before, after, STAT) == ["mkdocs/a b.md", "mkdocs/gone.md", "mkdocs/new.md"]
    assert changed_paths(before, before, STAT) == []


def test_a_directory_that_appeared_is_no_change_but_what_is_put_in_it_is():
    before = stat_listing(("mkdocs/", "d", "4096"))
    folder = stat_listing(("mkdocs/", "d", "4096")).replace(b"1.5 1.5", b"1.5 2.5") + stat_listing(
        ("mkdocs/assets", "d", "4096")
    )
    assert changed_paths(b"", stat_listing(("mkdocs", "d", "4096")), STAT) == []  # a first deploy's bind folder
    assert changed_paths(before, folder, STAT) == []
    assert changed_paths(before, folder + stat_listing(("mkdocs/assets/x.png", "f", "9")), STAT) == [
        "mkdocs/assets/x.png"
    ]
    assert changed_paths(folder, before, STAT) == ["mkdocs/assets"]  # a folder that went away counts
    chmod = stat_listing(("mkdocs/", "d", "4096")).replace(b" 644 ", b" 777 ")
    assert changed_paths(before, chmod, STAT) == ["mkdocs/"]


def test_changed_paths_of_a_content_listing():
    before = b"a" * 64 + b"  mkdocs/x.md\0" + b"b" * 64 + b"  mkdocs/y.md\0"
    after = b"a" * 64 + b"  mkdocs/x.md\0" + b"c" * 64 + b"  mkdocs/y.md\0"
    assert changed_paths(before, after, CONTENT) == ["mkdocs/y.md"]


def test_snapshot_argv_passes_values_as_positional_parameters_only():
    argv = snapshot_argv(install_dir="/srv/t a", paths=["mkdocs/", "$(reboot)"], listing=".ccp/upgrades/3/x", kind=STAT)
    assert argv[:2] == ["sh", "-c"] and argv[3:] == [
        "ccp-protected",
        "/srv/t a",
        ".ccp/upgrades/3/x",
        "stat",
        "mkdocs/",
        "$(reboot)",
    ]
    with pytest.raises(ValueError):
        snapshot_argv(install_dir="/srv", paths=[], listing="x", kind="md5")


def test_parse_snapshot_refuses_garbage():
    snap = parse_snapshot(b"%s 12 10 2147483649\n" % (b"f" * 64), kind=STAT, listing="l")
    assert (snap.entries, snap.files, snap.bytes) == (12, 10, 2147483649)
    with pytest.raises(StepError):
        parse_snapshot(b"find: permission denied\n", kind=STAT, listing="l")


# --- on the testbed --------------------------------------------------------------------------------


def change_keeping_mtime(path) -> None:
    """Same size, other bytes, and the old mtime put back: what a careful hand edit could leave."""
    before = path.stat()
    data = path.read_bytes()
    path.write_bytes(bytes(b ^ 0x20 if 65 <= b <= 122 else b for b in data))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size and path.stat().st_mtime_ns == before.st_mtime_ns
    assert path.read_bytes() != data


@pytest.mark.testbed
@pytest.mark.django_db(transaction=True)
def test_the_row_holds_a_digest_and_counts_and_the_listing_stays_on_the_node(make_tenant, celery_worker_thread):
    tenant = make_tenant()

    upgrade = wait_final(quick(tenant, "v2"))

    assert upgrade.status == UpgradeStatus.SUCCEEDED, upgrade.error
    before = upgrade.state["protected_before"][STAT]
    assert before["files"] == 4 and before["bytes"] == sum(
        p.stat().st_size for p in (tenant.path / "mkdocs").rglob("*") if p.is_file()
    )
    assert len(before["digest"]) == 64 and CONTENT not in upgrade.state["protected_before"]
    assert "guide with spaces" not in str(upgrade.state)  # no per-file list on the row
    listing = tenant.path / before["listing"]
    assert listing.parent == tenant.path / ".ccp" / "upgrades" / str(upgrade.pk)
    assert b"mkdocs/docs/guide with spaces.md f " in listing.read_bytes()
    assert (listing.parent / "protected-after.stat").read_bytes() == listing.read_bytes()


@pytest.mark.testbed
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("full_hash", [True, False])
def test_content_changed_with_its_mtime_restored_fails_the_upgrade(
    make_tenant, celery_worker_thread, after_up, settings, full_hash
):
    settings.CCP_PROTECTED_FULL_HASH = full_hash
    tenant = make_tenant()
    victim = tenant.path / "mkdocs" / "docs" / "guide with spaces.md"
    after_up(lambda ctx: change_keeping_mtime(victim))

    upgrade = wait_final(quick(tenant, "v2"))

    assert upgrade.status == UpgradeStatus.ROLLED_BACK, upgrade.error
    assert "Protected content changed during the upgrade: mkdocs/docs/guide with spaces.md." in upgrade.error
    assert tenant.images() == {"v1"} and b"\nIMAGE_TAG=v1\n" in tenant.env()
    steps = [s.name for s in upgrade.steps.order_by("position")]
    assert ("protected content hashed" in steps) is full_hash
    if full_hash:
        assert steps.index("protected content hashed") > steps.index("pull images")
        assert upgrade.state["protected_before"][CONTENT]["files"] == 4


@pytest.mark.testbed
@pytest.mark.django_db(transaction=True)
def test_full_hash_alone_catches_what_the_listing_cannot_see(make_tenant, after_up, settings):
    """Tamper with the recorded listing digest to stand for a change no stat field shows (a file
    system without a trustworthy ctime): the content hash still fails the upgrade."""

    settings.CCP_PROTECTED_FULL_HASH = True
    tenant = make_tenant()
    victim = tenant.path / "mkdocs" / "index.md"

    def tamper(ctx):
        change_keeping_mtime(victim)
        listing = tenant.path / ctx.upgrade.state["protected_before"][STAT]["listing"]
        ctx.upgrade.state["protected_before"].pop(STAT)  # only the content hash is left to compare
        assert listing.exists()

    after_up(tamper)
    upgrade = quick_foreground(tenant, "v2", upgrade_run)

    assert upgrade.status == UpgradeStatus.ROLLED_BACK, upgrade.error
    assert "mkdocs/index.md" in upgrade.error
    assert (tenant.path / f".ccp/upgrades/{upgrade.pk}/protected-after.content").exists()


def quick_foreground(tenant, tag, upgrade_run):
    upgrade = upgrade_request(instance=tenant.instance, mode=UpgradeMode.IMAGE_ONLY, image_tag=tag, enqueue=False)
    upgrade_run(upgrade_id=upgrade.pk)
    upgrade.refresh_from_db()
    return upgrade


@pytest.mark.testbed
@pytest.mark.django_db(transaction=True)
def test_an_upgrade_recorded_by_an_older_ccp_is_still_compared(make_tenant, after_up):
    """A full upgrade resumed across an update of the panel has every file's sha256 on its row."""

    tenant = make_tenant()

    def older_record_then_tamper(ctx):
        base = ctx.instance.install_dir
        ctx.upgrade.state["protected_before"] = ctx.driver.checksums([f"{base}/mkdocs/"], base=base)
        (tenant.path / "mkdocs" / "index.md").write_bytes(b"tampered\n")

    after_up(older_record_then_tamper)
    upgrade = quick_foreground(tenant, "v2", upgrade_run)

    assert upgrade.status == UpgradeStatus.ROLLED_BACK and "mkdocs/index.md" in upgrade.error


@pytest.mark.testbed
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind", [STAT, CONTENT])
def test_a_protected_folder_that_is_a_link_and_names_with_newlines(make_tenant, kind):
    # mkdocs/ is a link to a folder elsewhere; a file name holds a newline and two spaces.
    tenant = make_tenant()
    content = tenant.path.parent / f"content-{uuid.uuid4().hex[:6]}"
    os.replace(tenant.path / "mkdocs", content)
    (tenant.path / "mkdocs").symlink_to(content)
    odd = content / "docs" / "new\nline  two spaces.md"
    odd.write_bytes(b"hello world\n")
    subprocess.run(["chown", "-R", "--reference", str(tenant.path), str(content)], check=True)
    subprocess.run(["chown", "-h", "--reference", str(tenant.path), str(tenant.path / "mkdocs")], check=True)
    driver = driver_for(tenant.node)
    try:
        before = take_snapshot(driver, tenant.instance, upgrade_id=990001, kind=kind, moment="before")
        assert before.files == 5
        change_keeping_mtime(odd)
        after = take_snapshot(driver, tenant.instance, upgrade_id=990001, kind=kind, moment="after")

        assert after.digest != before.digest and after.files == 5
        listings = [(tenant.path / s.listing).read_bytes() for s in (before, after)]
        assert changed_paths(*listings, kind) == ["mkdocs/docs/new\nline  two spaces.md"]
    finally:
        subprocess.run(["rm", "-rf", str(content)], check=False)
