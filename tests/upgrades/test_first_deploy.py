"""First deploy of an instance CCP provisions (issue 10, items 6 and 7): nothing on the node yet."""

import logging
import pwd
import uuid

import pytest
from django.contrib.admin.models import LogEntry

from instances.attention import attention_raise
from instances.backups.restore import backup_restore_request, backup_restore_run
from instances.backups.services import backup_request, backup_run
from instances.choices import RestoreStatus
from instances.models import Instance
from instances.preview import instance_preview
from tests.testbed.sshd import NODE_USER
from tests.testbed.tenant import Tenant, tenant_create, testbed_ports
from upgrades.choices import UpgradeMode, UpgradeStatus
from upgrades.services import upgrade_request

from .handmade import chown_like_parent, public_registry_mentions
from .helpers import registry_id, wait_final

pytestmark = [pytest.mark.testbed, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def new_tenant(testbed_node, testbed_release, node_workdir_factory, settings):
    """An instance whose install directory does not exist on the node yet."""
    settings.CCP_HEALTH_TIMEOUT = 20
    made = []

    def make() -> Tenant:
        slug = f"n{uuid.uuid4().hex[:8]}"
        path = node_workdir_factory() / "tenants" / slug  # neither folder exists
        made.append(
            tenant_create(node=testbed_node, path=path, slug=slug, compose_project=f"ccp-{slug}", ports=testbed_ports())
        )
        return made[-1]

    yield make
    for tenant in made:
        tenant.remove_containers()


def deploy(tenant, release):
    preview = instance_preview(instance=tenant.instance, release=release)
    return upgrade_request(
        instance=tenant.instance, mode=UpgradeMode.RELEASE, release=release, preview_hash=preview.preview_hash
    ), preview


def owner(path) -> str:
    return pwd.getpwuid(path.stat().st_uid).pw_name


def test_6_a_first_deploy_creates_the_directory_and_bind_folders_as_the_node_account(
    new_tenant, testbed_release, celery_worker_thread, docker_engine, api, operator
):
    tenant = new_tenant()
    assert not tenant.path.exists() and not tenant.path.parent.exists()

    upgrade, preview = deploy(tenant, testbed_release("v2.0.0", "v2"))
    upgrade = wait_final(upgrade)

    assert upgrade.status == UpgradeStatus.SUCCEEDED, upgrade.error
    assert owner(tenant.path) == NODE_USER
    # docs bind-mounts ./mkdocs: made by CCP as the node account, not by docker as root
    assert (tenant.path / "mkdocs").is_dir() and owner(tenant.path / "mkdocs") == NODE_USER
    for path, rendered in preview.files.items():
        assert (tenant.path / path).read_bytes() == rendered.content
        assert owner(tenant.path / path) == NODE_USER
    assert set(tenant.running_image_ids().values()) == {registry_id(docker_engine, "v2")} and tenant.all_healthy()
    assert len(tenant.project_container_names()) == 3
    assert public_registry_mentions(upgrade) == []
    # "Deploy" in the history, the API and the admin
    assert upgrade.is_first_deploy and upgrade.kind_display == "Deploy" and str(upgrade).startswith("Deploy of")
    body = api(operator).get(f"/api/v1/upgrades/{upgrade.pk}/").json()
    assert body["kind"] == "Deploy" and body["is_first_deploy"] is True
    assert upgrade.steps.get(name="pre-upgrade backup").output.startswith("first deploy: there is nothing")
    tenant.instance.refresh_from_db()
    assert tenant.instance.observed_version == "v2.0.0"


def test_6_after_a_first_deploy_a_backup_and_a_restore_work_and_the_restore_resolves_attention(
    new_tenant, testbed_release, celery_worker_thread, settings, tmp_path
):
    settings.BACKUP_ROOT = tmp_path / "backups"
    settings.BACKUP_ROOT.mkdir()
    tenant = new_tenant()
    upgrade, _ = deploy(tenant, testbed_release("v1", "v1"))
    assert wait_final(upgrade).status == UpgradeStatus.SUCCEEDED
    page = tenant.path / "mkdocs" / "index.md"
    page.write_bytes(b"# Written by the tenant after the deploy\n")
    chown_like_parent(page)
    backup = backup_request(instance=tenant.instance, enqueue=False)
    backup_run(backup_id=backup.pk)
    page.write_bytes(b"# edited later, to be undone\n")
    attention_raise(instance=tenant.instance, reason="An operator suspects the docs were overwritten.")

    restore = backup_restore_request(backup=backup, enqueue=False)
    status = backup_restore_run(restore_id=restore.pk)

    restore.refresh_from_db()
    assert status == RestoreStatus.SUCCEEDED, restore.error  # mkdocs/ is the node account's: it can be swapped
    assert page.read_bytes() == b"# Written by the tenant after the deploy\n" and owner(page.parent) == NODE_USER
    assert tenant.all_healthy()
    assert "resolved 1 attention record(s)" in restore.log
    tenant.instance.refresh_from_db()
    assert tenant.instance.attention == ""
    assert tenant.instance.attentions.get().resolution == f"Resolved automatically: restore #{restore.pk} succeeded."


def test_7_a_failed_first_deploy_leaves_nothing_running_and_removes_what_it_created(
    new_tenant, testbed_release, celery_worker_thread, docker_engine
):
    tenant = new_tenant()
    broken = testbed_release("v9.0.0", docker_engine.broken_tag)

    upgrade, _ = deploy(tenant, broken)
    upgrade = wait_final(upgrade)

    assert upgrade.status == UpgradeStatus.ROLLED_BACK, upgrade.error
    assert tenant.project_container_names() == []  # docker ps -a: no container of the project at all
    assert not tenant.path.exists()  # the deploy created it, and took it away again
    assert tenant.path.parent.exists()
    rollback = list(upgrade.steps.filter(is_rollback=True).values_list("name", "status"))
    assert rollback == [
        ("stop the deployed stack (compose down)", "succeeded"),
        ("remove what the deploy created", "succeeded"),
    ]
    tenant.instance.refresh_from_db()
    assert tenant.instance.attention == ""


def test_7_a_first_deploy_that_fails_its_precheck_removes_the_directory_it_created(
    new_tenant, testbed_release, celery_worker_thread, settings
):
    settings.CCP_MIN_FREE_DISK_MB = 1 << 40  # no node has that much: the precheck fails after the mkdir
    tenant = new_tenant()

    upgrade, _ = deploy(tenant, testbed_release("v1", "v1"))
    upgrade = wait_final(upgrade)

    assert upgrade.status == UpgradeStatus.ROLLED_BACK and "MB free" in upgrade.error, upgrade.error
    assert not tenant.path.exists() and tenant.project_container_names() == []
    assert "nothing was started" in upgrade.steps.get(name="stop the deployed stack (compose down)").output


def test_first_deploy_generates_the_missing_secrets_it_writes_and_never_shows_them(
    new_tenant, testbed_release, celery_worker_thread, api, operator, caplog
):
    """Reads never write (issue 11): the preview shows a placeholder and leaves the secrets column as it
    was; the upgrade generates the value (audited, named only), writes it into the node's .env, and the
    placeholder-hashed preview the operator approved still matches."""
    caplog.set_level(logging.DEBUG)
    tenant = new_tenant()
    tenant.instance.set_secrets({})  # its release's template set needs APP_SECRET; it has none yet
    tenant.instance.save()
    release = testbed_release("v2.0.0", "v2")

    preview = instance_preview(instance=tenant.instance, release=release)
    assert preview.secrets_to_generate == ["APP_SECRET"]
    assert Instance.objects.values_list("secrets_encrypted", flat=True).get(pk=tenant.instance.pk) == ""
    upgrade = wait_final(
        upgrade_request(
            instance=tenant.instance,
            mode=UpgradeMode.RELEASE,
            release=release,
            user=operator,
            preview_hash=preview.preview_hash,
        )
    )

    assert upgrade.status == UpgradeStatus.SUCCEEDED, upgrade.error
    tenant.instance.refresh_from_db()
    value = tenant.instance.get_secrets()["APP_SECRET"]
    env = (tenant.path / ".env").read_text()
    assert f"APP_SECRET={value}" in env.splitlines() and "WILL_BE_GENERATED" not in env
    assert tenant.all_healthy()
    step = upgrade.steps.get(name="generate missing secrets")
    assert step.output.startswith("generated APP_SECRET")
    assert upgrade.state["generated_secrets"] == ["APP_SECRET"]
    entry = LogEntry.objects.get(object_id=str(tenant.instance.pk), change_message__contains="Generated")
    assert entry.user == operator and f"upgrade #{upgrade.pk}" in entry.change_message
    answers = [
        api(operator).get(f"/api/v1/upgrades/{upgrade.pk}/").content.decode(),
        api(operator).get(f"/api/v1/instances/{tenant.instance.slug}/").content.decode(),
        api(operator).get(f"/api/v1/instances/{tenant.instance.slug}/preview/?release=v2.0.0").content.decode(),
    ]
    texts = [
        *upgrade.steps.values_list("output", flat=True),
        upgrade.error,
        entry.change_message,
        *answers,
        *(record.getMessage() for record in caplog.records),
    ]
    assert [text for text in texts if value in text] == []
