"""One test (or a few) per hole of the security review (issue #9). Each failed on the code before the fix."""

from __future__ import annotations

import functools
import http.server
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.contrib.admin.models import LogEntry
from django.core.management import call_command
from django.utils import timezone

from instances.backups.services import backup_request, backup_run
from instances.choices import BackupStatus
from instances.drivers import close_all, driver_for
from instances.drivers.ssh_connect import load_client_key
from instances.health import probe_urls
from instances.models import Backup, Instance, Node
from instances.operations.choices import OperationKind
from instances.operations.models import InstanceLock
from instances.services import node_save
from tests.backups.helpers import make_ssh_node
from tests.testbed.sshd import generate_key
from upgrades.models import Release, Upgrade

BASE_DIR = Path(__file__).resolve().parents[2]


# --- 1. operators never reach the panel host ------------------------------------------------------


@pytest.mark.django_db
def test_an_operator_cannot_switch_a_node_to_the_local_driver(api, operator, make_node):
    node = make_node(driver="ssh", ssh_key_path="")
    response = api(operator).patch(f"/api/v1/nodes/{node.name}/", {"driver": "local"}, format="json")
    assert response.status_code == 403
    assert "superuser" in response.json()["detail"]
    node.refresh_from_db()
    assert node.driver == "ssh"


@pytest.mark.django_db
def test_an_operator_cannot_point_a_node_at_a_key_file(api, operator, make_node):
    node = make_node(driver="ssh")
    response = api(operator).patch(
        f"/api/v1/nodes/{node.name}/", {"ssh_key_path": "/etc/ssh/ssh_host_rsa_key"}, format="json"
    )
    assert response.status_code == 403
    assert Node.objects.get(pk=node.pk).ssh_key_path == ""


@pytest.mark.django_db
def test_the_admin_shows_panel_host_fields_read_only_to_operators(client, operator, superuser, make_node):
    node = make_node(driver="ssh")
    client.force_login(operator)
    page = client.get(f"/admin/instances/node/{node.pk}/change/").content.decode()
    assert 'name="driver"' not in page and 'name="ssh_key_path"' not in page
    client.force_login(superuser)
    page = client.get(f"/admin/instances/node/{node.pk}/change/").content.decode()
    assert 'name="driver"' in page and 'name="ssh_key_path"' in page


@pytest.mark.django_db
def test_a_superuser_sets_the_local_driver_only_when_the_panel_allows_it(api, superuser, make_node, settings):
    node = make_node(driver="ssh")
    settings.CCP_ALLOW_LOCAL_DRIVER = False
    response = api(superuser).patch(f"/api/v1/nodes/{node.name}/", {"driver": "local"}, format="json")
    assert response.status_code == 400
    assert "CCP_ALLOW_LOCAL_DRIVER" in str(response.json()["driver"])
    settings.CCP_ALLOW_LOCAL_DRIVER = True
    assert api(superuser).patch(f"/api/v1/nodes/{node.name}/", {"driver": "local"}, format="json").status_code == 200


@pytest.mark.django_db
def test_a_local_node_saved_before_the_setting_was_turned_off_runs_nothing(make_node, settings, tmp_path):
    node = make_node(driver="local")
    settings.CCP_ALLOW_LOCAL_DRIVER = False
    with pytest.raises(Exception, match="CCP_ALLOW_LOCAL_DRIVER"):
        driver_for(node).run(["touch", str(tmp_path / "ran")])
    assert not (tmp_path / "ran").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/etc/shadow", "relative/key", "{dir}/../outside", "{dir}/link-out"])
def test_a_key_path_must_lie_in_the_key_folder(api, superuser, make_node, settings, tmp_path, path):
    key_dir = tmp_path / "keys"
    key_dir.mkdir()
    (key_dir / "link-out").symlink_to("/etc/hostname")
    settings.CCP_SSH_KEY_DIR = str(key_dir)
    node = make_node(driver="ssh")
    response = api(superuser).patch(
        f"/api/v1/nodes/{node.name}/", {"ssh_key_path": path.format(dir=key_dir)}, format="json"
    )
    assert response.status_code == 400
    assert "CCP_SSH_KEY_DIR" in str(response.json()["ssh_key_path"])
    ok = api(superuser).patch(f"/api/v1/nodes/{node.name}/", {"ssh_key_path": str(key_dir / "node-key")}, format="json")
    assert ok.status_code == 200


@pytest.mark.django_db
@pytest.mark.testbed
def test_a_key_link_swapped_out_of_the_key_folder_is_refused_by_every_use(api, superuser, ssh_node, settings, tmp_path):
    """Re-pinning (its handshake loads the key) checks the key path again too, like every other use."""
    key_dir, outside = tmp_path / "keys", tmp_path / "outside"
    key_dir.mkdir(), outside.mkdir()
    (key_dir / "node-key").write_bytes(Path(ssh_node.key_path).read_bytes())
    (outside / "other").write_bytes(Path(ssh_node.key_path).read_bytes())
    (key_dir / "link").symlink_to(key_dir / "node-key")
    settings.CCP_SSH_KEY_DIR = str(key_dir)
    node = Node.objects.create(name="keyed", **{**ssh_node.node_fields(), "ssh_key_path": str(key_dir / "link")})
    client = api(superuser)
    try:
        asked = client.post(f"/api/v1/nodes/{node.name}/repin-host-key/", {}, format="json")
        assert asked.json()["presented_fingerprint"] == ssh_node.host_key_fingerprint
        (key_dir / "link").unlink()
        (key_dir / "link").symlink_to(outside / "other")  # someone with write access to the folder

        refused = client.post(f"/api/v1/nodes/{node.name}/repin-host-key/", {}, format="json")
        assert "presented_fingerprint" not in refused.json()
        assert "CCP_SSH_KEY_DIR" in refused.json()["detail"]
        with pytest.raises(Exception, match="CCP_SSH_KEY_DIR"):
            driver_for(Node.objects.get(pk=node.pk))
    finally:
        close_all()


@pytest.mark.django_db
def test_a_key_path_that_is_a_fifo_fails_at_once_with_a_sentence(make_node, settings, tmp_path):
    """A FIFO would block the worker forever in open() (a directory already failed with a sentence)."""
    settings.CCP_SSH_KEY_DIR = str(tmp_path)
    path = tmp_path / "key"
    os.mkfifo(path)
    node = make_node(driver="ssh", ssh_key_path=str(path))
    outcome: list[BaseException] = []

    def use() -> None:
        try:
            driver_for(node)
        except BaseException as error:  # noqa: BLE001 - handed to the test thread
            outcome.append(error)

    worker = threading.Thread(target=use, daemon=True)
    worker.start()
    worker.join(timeout=10)
    if worker.is_alive():
        with open(path, "wb"):  # unblock the reader so the thread ends
            pass
    assert not worker.is_alive() or pytest.fail("driver_for blocked on the key path")
    assert outcome and "not a regular file" in str(outcome[0])


@pytest.mark.django_db
@pytest.mark.parametrize(
    "field,value",
    [
        ("install_dir", "/var/lib/ccp-elsewhere"),
        ("upgrade_script", "evil.sh"),
        # which containers on the node an upgrade replaces: a stack CCP does
        # not manage (the node's front proxy) must not be taken over
        ("compose_project", "front-proxy"),
    ],
)
def test_moving_an_instance_is_privileged(api, operator, superuser, make_instance, field, value):
    instance = make_instance()
    before = getattr(instance, field)
    refused = api(operator).patch(f"/api/v1/instances/{instance.slug}/", {field: value}, format="json")
    assert refused.status_code == 403 and "relocate_instance" in refused.json()["detail"]
    assert getattr(Instance.objects.get(pk=instance.pk), field) == before

    done = api(superuser).patch(f"/api/v1/instances/{instance.slug}/", {field: value}, format="json")
    assert done.status_code == 200
    entry = LogEntry.objects.filter(user=superuser, change_message__startswith="Privileged change").get()
    assert f"{field}: {before} → {value}" in entry.change_message


@pytest.mark.django_db
def test_an_empty_compose_project_is_the_slug_and_no_move(api, operator, make_instance):
    instance = make_instance(compose_project="")
    assert Instance.objects.get(pk=instance.pk).compose_project == instance.slug
    response = api(operator).patch(f"/api/v1/instances/{instance.slug}/", {"compose_project": ""}, format="json")
    assert response.status_code == 200, response.content
    assert not LogEntry.objects.filter(change_message__startswith="Privileged change").exists()


@pytest.mark.django_db
def test_moving_an_instance_to_another_node_is_privileged_and_audited(
    api, operator, superuser, make_instance, make_node
):
    instance, other = make_instance(), make_node()
    old = instance.node.name
    assert (
        api(operator).patch(f"/api/v1/instances/{instance.slug}/", {"node": other.name}, format="json").status_code
        == 403
    )
    assert (
        api(superuser).patch(f"/api/v1/instances/{instance.slug}/", {"node": other.name}, format="json").status_code
        == 200
    )
    assert LogEntry.objects.filter(change_message__contains=f"node: {old} → {other.name}").exists()


@pytest.mark.django_db
@pytest.mark.testbed
def test_an_operator_cannot_point_a_node_at_a_host_they_control(
    api, operator, superuser, make_instance, ssh_node_factory
):
    """Changing a node's address or port moves every instance on it: an operator who could do it, then re-pin
    with the fingerprint of their own host, would have the tenants' rendered .env written there."""
    trusted, theirs = ssh_node_factory(), ssh_node_factory()
    node = make_ssh_node(trusted)
    theirs.authorize(_public_line_of(node))
    make_instance(node=node)
    client = api(operator)
    try:
        assert client.post(f"/api/v1/nodes/{node.name}/check/").status_code == 200
        for change in (
            {"address": theirs.host, "ssh_port": theirs.port},
            {"ssh_port": theirs.port},
            {"ssh_user": "nobody"},
        ):
            refused = client.patch(f"/api/v1/nodes/{node.name}/", change, format="json")
            assert refused.status_code == 403, (change, refused.content)
            assert "relocate_instance" in refused.json()["detail"]
        stored = Node.objects.get(pk=node.pk)
        assert (stored.address, stored.ssh_port) == (trusted.host, trusted.port)
        # nothing to re-pin: the node still presents the trusted key, so a re-pin to theirs is refused
        repin = client.post(
            f"/api/v1/nodes/{node.name}/repin-host-key/", {"fingerprint": theirs.host_key_fingerprint}, format="json"
        )
        assert repin.status_code == 409
        assert Node.objects.get(pk=node.pk).host_key_fingerprint == trusted.host_key_fingerprint

        done = api(superuser).patch(
            f"/api/v1/nodes/{node.name}/", {"ssh_port": theirs.port, "address": theirs.host}, format="json"
        )
        assert done.status_code == 200, done.content
        entry = LogEntry.objects.filter(user=superuser, change_message__startswith="Privileged change").get()
        assert f"ssh_port: {trusted.port} → {theirs.port}" in entry.change_message
    finally:
        close_all()


@pytest.mark.django_db
def test_the_admin_shows_where_a_node_points_read_only_to_operators(client, operator, make_node, make_instance):
    node = make_node(driver="ssh")
    source = make_node(driver="ssh")
    client.force_login(operator)
    page = client.get(f"/admin/instances/node/{node.pk}/change/").content.decode()
    for field in ("address", "ssh_port", "ssh_user", "image_source"):
        assert f'name="{field}"' not in page, field
    # a forged POST of the read-only fields changes nothing
    client.post(
        f"/admin/instances/node/{node.pk}/change/",
        {
            "name": node.name,
            "address": "127.0.0.9",
            "ssh_port": 2222,
            "ssh_user": "nobody",
            "instance_root": node.instance_root,
            "registry_access": "",
            "image_source": source.pk,
            "private_key": "",
        },
    )
    stored = Node.objects.get(pk=node.pk)
    assert (stored.address, stored.ssh_port, stored.ssh_user, stored.image_source_id) == (
        node.address,
        node.ssh_port,
        node.ssh_user,
        None,
    )


def _public_line_of(node: Node) -> str:
    key = load_client_key(pkey_text=node.get_private_key())
    return f"{key.get_name()} {key.get_base64()}"


@pytest.mark.django_db
def test_an_instance_cannot_move_while_an_operation_holds_it(api, superuser, make_instance):
    instance = make_instance()
    InstanceLock.objects.create(
        instance=instance, kind=OperationKind.UPGRADE, operation_id=7, heartbeat_at=timezone.now()
    )
    response = api(superuser).patch(
        f"/api/v1/instances/{instance.slug}/", {"install_dir": "/srv/ccp/moved"}, format="json"
    )
    assert response.status_code == 409 and "busy" in response.json()["detail"]
    assert Instance.objects.get(pk=instance.pk).install_dir != "/srv/ccp/moved"
    # an unprivileged change still goes through
    assert (
        api(superuser).patch(f"/api/v1/instances/{instance.slug}/", {"name": "Renamed"}, format="json").status_code
        == 200
    )


@pytest.mark.django_db
def test_the_admin_refuses_a_move_while_locked_with_a_message(client, superuser, make_instance):
    instance = make_instance()
    InstanceLock.objects.create(
        instance=instance, kind=OperationKind.BACKUP, operation_id=3, heartbeat_at=timezone.now()
    )
    client.force_login(superuser)
    form = client.get(f"/admin/instances/instance/{instance.pk}/change/").context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None}
    data.update(
        node=instance.node.pk,
        install_dir="/srv/ccp/moved",
        ports='{"http": 1}',
        health_urls="[]",
        protected_paths='["mkdocs/"]',
        secret_updates="",
    )
    response = client.post(f"/admin/instances/instance/{instance.pk}/change/", data)
    assert response.status_code == 200 and "is busy" in response.content.decode()
    assert Instance.objects.get(pk=instance.pk).install_dir == instance.install_dir


# --- 2. backups keep secrets private --------------------------------------------------------------


def _modes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): stat.S_IMODE(p.stat().st_mode) for p in [root, *root.rglob("*")]}


@pytest.mark.django_db
@pytest.mark.testbed
def test_backup_files_are_0600_and_folders_0700_whatever_the_umask(ssh_node, node_workdir, settings, tmp_path):
    (node_workdir / ".env").write_text("DB_PASSWORD=s3cr3t-in-the-clear\n")
    (node_workdir / "mkdocs").mkdir()
    (node_workdir / "mkdocs" / "index.md").write_text("# hi\n")
    subprocess.run(["chown", "-R", "ccpnode:", str(node_workdir)], check=False)
    settings.BACKUP_ROOT = tmp_path / "backups"
    node = make_ssh_node(ssh_node)
    instance = Instance.objects.create(
        name="perm", slug="perm", node=node, install_dir=str(node_workdir), compose_project="perm"
    )
    seen_partial: dict[str, int] = {}

    def progress(name, size):  # look at the .partial folder while the backup is being written
        for partial in settings.BACKUP_ROOT.rglob("*.partial"):
            seen_partial.update(_modes(partial))

    old_umask = os.umask(0o000)
    try:
        backup = backup_request(instance=instance, user=None, enqueue=False)
        backup_run(backup_id=backup.pk, on_progress=progress)
    finally:
        os.umask(old_umask)
        close_all()
    backup.refresh_from_db()
    assert backup.status == BackupStatus.SUCCEEDED, backup.error
    assert seen_partial and set(seen_partial.values()) <= {0o600, 0o700}
    modes = _modes(settings.BACKUP_ROOT)
    for name, mode in modes.items():
        path = settings.BACKUP_ROOT / name
        assert mode == (0o700 if path.is_dir() else 0o600), f"{name} is {mode:o}"
    assert any(name.endswith("config-files.tar.gz") for name in modes)


@pytest.mark.django_db
def test_render_instance_writes_private_files_whatever_the_umask(make_instance, tmp_path):
    instance = make_instance(ports={"web": 31001, "api": 31002, "docs": 31003, "extra": 31004})
    Release.objects.create(version="v1.0.0", image_tag="v1", template_set="testbed", is_default=True)
    out = tmp_path / "render"
    old_umask = os.umask(0o000)
    try:
        call_command("render_instance", instance.slug, "--out", str(out), "--reveal-secrets")
    finally:
        os.umask(old_umask)
    for name, mode in _modes(out).items():
        assert mode == (0o700 if (out / name).is_dir() else 0o600), f"{name} is {mode:o}"


# --- 3. host-key trust holds for pooled connections --------------------------------------------------


@pytest.mark.django_db
@pytest.mark.testbed
def test_check_node_refuses_a_changed_key_even_with_a_pooled_connection(api, operator, ssh_node_factory):
    sshd = ssh_node_factory()
    node = make_ssh_node(sshd)
    client = api(operator)
    try:
        assert client.post(f"/api/v1/nodes/{node.name}/check/").status_code == 200
        pooled = driver_for(Node.objects.get(pk=node.pk))
        assert pooled.connected
        sshd.restart_with_new_host_key_keeping_connections()  # the pooled connection stays up

        refused = client.post(f"/api/v1/nodes/{node.name}/check/")
        assert refused.status_code == 502, refused.content
        assert sshd.host_key_fingerprint in refused.json()["detail"]
        assert Node.objects.get(pk=node.pk).check_ok is False
    finally:
        close_all()


@pytest.mark.django_db
@pytest.mark.testbed
def test_a_pooled_connection_is_dropped_when_the_node_changes(ssh_node, superuser, django_capture_on_commit_callbacks):
    node = make_ssh_node(ssh_node)
    try:
        driver = driver_for(node)
        driver.run(["true"], check=True)
        assert driver.connected
        node.ssh_port = ssh_node.port  # any save: address, port, user or key may have changed
        node.address = ssh_node.host
        with django_capture_on_commit_callbacks(execute=True):
            node_save(node=node, user=superuser)
        assert not driver.connected
        assert driver_for(Node.objects.get(pk=node.pk)) is not driver
    finally:
        close_all()


@pytest.mark.django_db
@pytest.mark.testbed
def test_a_pooled_connection_trusting_an_old_pin_is_not_reused(ssh_node, tmp_path):
    node = make_ssh_node(ssh_node)
    generate_key(tmp_path / "other", "other host")
    other_type, other_base64 = (tmp_path / "other.pub").read_text().split()[:2]
    try:
        first = driver_for(node)
        first.run(["true"], check=True)
        # another process re-pinned the node meanwhile: this process's live connection must not be trusted
        Node.objects.filter(pk=node.pk).update(host_key_type=other_type, host_key_base64=other_base64)
        with pytest.raises(Exception, match="(?i)host key"):
            driver_for(Node.objects.get(pk=node.pk)).run(["true"])
    finally:
        close_all()


@pytest.mark.django_db
@pytest.mark.testbed
def test_repinning_needs_the_expected_fingerprint(api, operator, ssh_node_factory):
    sshd = ssh_node_factory()
    node = make_ssh_node(sshd)
    client = api(operator)
    try:
        assert client.post(f"/api/v1/nodes/{node.name}/check/").status_code == 200
        old = Node.objects.get(pk=node.pk).host_key_fingerprint
        sshd.restart_with_new_host_key()

        ask = client.post(f"/api/v1/nodes/{node.name}/repin-host-key/", {}, format="json")
        assert ask.status_code == 400
        assert ask.json()["presented_fingerprint"] == sshd.host_key_fingerprint
        assert Node.objects.get(pk=node.pk).host_key_fingerprint == old

        wrong = client.post(f"/api/v1/nodes/{node.name}/repin-host-key/", {"fingerprint": old}, format="json")
        assert wrong.status_code == 409 and sshd.host_key_fingerprint in wrong.json()["detail"]
        assert Node.objects.get(pk=node.pk).host_key_fingerprint == old

        done = client.post(
            f"/api/v1/nodes/{node.name}/repin-host-key/", {"fingerprint": sshd.host_key_fingerprint}, format="json"
        )
        assert done.status_code == 200 and done.json()["host_key_fingerprint"] == sshd.host_key_fingerprint
        assert client.post(f"/api/v1/nodes/{node.name}/check/").json()["check_ok"] is True
    finally:
        close_all()


@pytest.mark.django_db
@pytest.mark.testbed
def test_the_admin_repin_page_shows_the_presented_fingerprint_and_needs_it(client, superuser, ssh_node_factory):
    sshd = ssh_node_factory()
    node = make_ssh_node(sshd)
    client.force_login(superuser)
    try:
        driver_for(node).run(["true"], check=True)
        old = Node.objects.get(pk=node.pk).host_key_fingerprint
        sshd.restart_with_new_host_key()
        close_all()
        page = client.post("/admin/instances/node/", {"action": "repin_host_keys", "_selected_action": [node.pk]})
        assert page.status_code == 200 and sshd.host_key_fingerprint in page.content.decode()
        assert Node.objects.get(pk=node.pk).host_key_fingerprint == old  # nothing changed yet

        blank = client.post(
            "/admin/instances/node/",
            {"action": "repin_host_keys", "_selected_action": [node.pk], "post": "yes", f"fingerprint_{node.pk}": ""},
            follow=True,
        )
        assert "pinned key was kept" in blank.content.decode()
        assert Node.objects.get(pk=node.pk).host_key_fingerprint == old

        confirm = {
            "action": "repin_host_keys",
            "_selected_action": [node.pk],
            "post": "yes",
            f"fingerprint_{node.pk}": sshd.host_key_fingerprint,
        }
        done = client.post("/admin/instances/node/", confirm, follow=True)
        assert f"host key pinned as {sshd.host_key_fingerprint}" in done.content.decode()
    finally:
        close_all()


# --- 4. no 500s on deletes --------------------------------------------------------------------------


@pytest.fixture
def history(make_instance):
    """An instance with a backup and an upgrade to a release: every kind of protected row."""
    instance = make_instance()
    release = Release.objects.create(version="v9.9.9", image_tag="v9", template_set="testbed")
    Backup.objects.create(instance=instance, status=BackupStatus.FAILED, error="x")
    Upgrade.objects.create(instance=instance, mode="release", release=release, to_version="v9.9.9")
    return instance, release


@pytest.mark.django_db
def test_api_deletes_of_rows_with_history_answer_409_naming_what_depends(api, superuser, history):
    instance, release = history
    client = api(superuser)
    for url, expected in (
        (f"/api/v1/nodes/{instance.node.name}/", "instance"),
        (f"/api/v1/instances/{instance.slug}/", "upgrade"),
        (f"/api/v1/releases/{release.version}/", "upgrade"),
    ):
        response = client.delete(url)
        assert response.status_code == 409, (url, response.content)
        assert expected in response.json()["detail"]
    assert "disabled" in client.delete(f"/api/v1/instances/{instance.slug}/").json()["detail"]
    assert Instance.objects.filter(pk=instance.pk).exists() and Release.objects.filter(pk=release.pk).exists()


@pytest.mark.django_db
def test_deleting_an_instance_keeps_its_upgrade_history(api, superuser, make_instance):
    instance = make_instance()
    Upgrade.objects.create(instance=instance, mode="image_only", to_version="v2")
    assert api(superuser).delete(f"/api/v1/instances/{instance.slug}/").status_code == 409
    assert Upgrade.objects.filter(instance=instance).count() == 1


@pytest.mark.django_db
def test_an_instance_without_history_may_be_deleted(api, superuser, make_instance):
    instance = make_instance()
    assert api(superuser).delete(f"/api/v1/instances/{instance.slug}/").status_code == 204
    assert LogEntry.objects.filter(object_repr=instance.slug, action_flag=3).exists()


@pytest.mark.django_db
def test_admin_deletes_of_rows_with_history_show_the_cannot_delete_page(client, superuser, history):
    instance, release = history
    client.force_login(superuser)
    for url in (
        f"/admin/instances/node/{instance.node.pk}/delete/",
        f"/admin/instances/instance/{instance.pk}/delete/",
        f"/admin/upgrades/release/{release.pk}/delete/",
    ):
        for response in (client.get(url), client.post(url, {"post": "yes"})):
            assert response.status_code == 200, url
            assert "Cannot delete" in response.content.decode()
    for model, pk in (
        ("instances/node", instance.node.pk),
        ("instances/instance", instance.pk),
        ("upgrades/release", release.pk),
    ):
        response = client.post(
            f"/admin/{model}/", {"action": "delete_selected", "_selected_action": [pk], "post": "yes"}
        )
        assert response.status_code == 200 and "Cannot delete" in response.content.decode()
    assert Instance.objects.filter(pk=instance.pk).exists()


# --- 5. production settings -------------------------------------------------------------------------

PRODUCTION_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "production-like-" + "x1y2z3w4" * 8,
    "ALLOWED_HOSTS": "ccp.example.org",
    "DATABASE_URL": "sqlite:////tmp/ccp-deploy-check.sqlite3",
}


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    return _python_run(["manage.py", *args], **env)


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    return _python_run(["-c", code], **env)


def _python_run(argv: list[str], **env: str) -> subprocess.CompletedProcess:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SECURE_", "SESSION_", "CSRF_", "CCP_", "DJANGO_SETTINGS"))
    }
    full = {
        **clean,
        "CCP_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        **PRODUCTION_ENV,
        "DJANGO_SETTINGS_MODULE": "ccp.settings",
        "CCP_VAR_DIR": "/tmp/ccp-deploy-check-var",
        **env,
    }
    return subprocess.run([sys.executable, *argv], cwd=BASE_DIR, env=full, capture_output=True, text=True, timeout=120)


def test_check_deploy_is_clean_in_production():
    result = _manage("check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout + result.stderr


def test_a_malformed_encryption_key_stops_start_up():
    result = _manage("check", CCP_ENCRYPTION_KEYS="not-a-fernet-key")
    assert result.returncode != 0
    assert "CCP_ENCRYPTION_KEYS" in result.stderr and "not-a-fernet-key" not in result.stderr
    # the web server's entry point and the worker refuse too (they run no management command)
    for code in (
        "import ccp.wsgi",
        "from ccp.celery import app; from ccp.startup import refuse_to_start_misconfigured;"
        " import django; django.setup(); refuse_to_start_misconfigured()",
    ):
        started = _python(code, CCP_ENCRYPTION_KEYS="not-a-fernet-key")
        assert started.returncode != 0 and "CCP_ENCRYPTION_KEYS" in started.stderr, started.stderr[-2000:]


@pytest.mark.django_db
def test_the_schema_and_docs_need_authentication(client, api, viewer, settings):
    for url in ("/api/schema/", "/api/docs/"):
        assert client.get(url).status_code in (401, 403)
        assert api(viewer).get(url).status_code == 200
    settings.CCP_PUBLIC_SCHEMA = True
    assert client.get("/api/schema/").status_code == 200


# --- 6. smaller gaps --------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["", "A\nB", "lower", "1ABC", "A B", "A=B", "A;B", "ÄÖ"])
def test_secret_names_are_environment_variable_names(api, superuser, make_instance, name):
    instance = make_instance()
    response = api(superuser).patch(f"/api/v1/instances/{instance.slug}/", {"secrets": {name: "v"}}, format="json")
    assert response.status_code == 400, response.content
    assert name not in Instance.objects.get(pk=instance.pk).secret_names


@pytest.mark.django_db
@pytest.mark.parametrize("address", ["0", "0.0.0.0", "::", "127.1", "0x7f000001", "2130706433", "-oProxy", "a b"])
def test_a_node_address_is_a_hostname_or_an_ip(api, superuser, address):
    response = api(superuser).post("/api/v1/nodes/", {"name": "n1", "address": address, "driver": "ssh"}, format="json")
    assert response.status_code == 400 and "address" in response.json()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "domain",
    [
        "a b.org",
        "x.org; include /etc/passwd",
        "x.org\nserver_name y",
        "'x'",
        "-x.org",
        "x..org",
        "127.0.0.1",
        "$(id).org",
    ],
)
def test_a_domain_is_a_dns_name(api, superuser, make_instance, domain):
    instance = make_instance(domain="before.example.org")
    response = api(superuser).patch(f"/api/v1/instances/{instance.slug}/", {"domain": domain}, format="json")
    assert response.status_code == 400 and "domain" in response.json(), response.content
    assert Instance.objects.get(pk=instance.pk).domain == "before.example.org"
    ok = api(superuser).patch(f"/api/v1/instances/{instance.slug}/", {"domain": "campaign.example.org."}, format="json")
    assert ok.status_code == 200, ok.content


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "gopher://127.0.0.1/",
        "http://",
        "http://a b/",
        "http://127.0.0.1/\n-o/tmp/x",
        "HTTP://127.0.0.1/",
        "ftp://127.0.0.1/",
    ],
)
def test_health_urls_are_http_or_https(api, superuser, make_instance, url):
    instance = make_instance()
    response = api(superuser).patch(f"/api/v1/instances/{instance.slug}/", {"health_urls": [url]}, format="json")
    assert response.status_code == 400


@pytest.fixture
def literal_http(tmp_path):
    """A loopback web server whose one page has a name curl would read as a glob range: /[1]{a}."""
    (tmp_path / "[1]{a}").write_text("ok")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.django_db
def test_health_urls_are_fetched_without_globbing(make_node, literal_http):
    # with globbing on, curl reads [1] and {a} as ranges and asks for /1a; with it off, for the page itself
    url = f"{literal_http}/[1]{{a}}"
    ok, output = probe_urls(driver_for(make_node(driver="local")), [url])[url]
    assert ok, output


@pytest.fixture
def truncating_http():
    """A loopback server that answers 200, sends part of a body holding a canary, and hangs up: what a
    streaming or broken internal service on a node does."""
    import socket

    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.recv(4096)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\nINTERNAL-CANARY-7731 token=abc")

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/"
    listener.close()


@pytest.mark.django_db
def test_a_health_probe_never_returns_a_response_body(make_node, truncating_http):
    """Health outputs are shown to viewers: an operator must not read a node-internal service through them."""
    ok, output = probe_urls(driver_for(make_node(driver="local")), [truncating_http])[truncating_http]
    assert not ok
    assert "INTERNAL-CANARY" not in output and output  # the reason stays (curl's error), the body does not


@pytest.mark.django_db
def test_the_admin_preview_refuses_an_unknown_release(client, superuser, make_instance):
    instance = make_instance()
    Release.objects.create(version="v1.0.0", image_tag="v1", template_set="testbed", is_default=True)
    client.force_login(superuser)
    page = client.get(f"/admin/instances/instance/{instance.pk}/preview/?release=v404").content.decode()
    assert "There is no release" in page and "v404" in page
    assert "for release v1.0.0" not in page


# --- found by schema fuzzing --------------------------------------------------------------------------


@pytest.mark.django_db
def test_values_the_database_refuses_are_a_400_not_a_500(api, superuser, make_node):
    node = make_node()
    client = api(superuser)
    nul = client.post(
        "/api/v1/instances/", {"name": "x", "slug": "x", "node": "a\x00b", "install_dir": "/srv/x"}, format="json"
    )
    assert nul.status_code == 400, nul.content
    far = client.get("/api/v1/backups/", {"created_before": "7568-09-01T19:28:28.350838-22:36"})
    assert far.status_code in (200, 400), far.content
    assert node.pk


@pytest.mark.django_db
def test_an_instance_is_never_deleted_under_a_running_operation(client, api, superuser, make_instance):
    instance = make_instance()
    InstanceLock.objects.create(
        instance=instance, kind=OperationKind.BACKUP, operation_id=5, heartbeat_at=timezone.now()
    )
    assert api(superuser).delete(f"/api/v1/instances/{instance.slug}/").status_code == 409
    client.force_login(superuser)
    assert client.post(f"/admin/instances/instance/{instance.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Instance.objects.filter(pk=instance.pk).exists() and InstanceLock.objects.filter(instance=instance).exists()
