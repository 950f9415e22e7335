"""The console's pages in Chromium, one item of issue 13 at a time (the journey covers them in order;
these cover what the journey does not pass through)."""

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import User

from instances.models import Instance
from tests.testbed.tenant import free_port
from upgrades.choices import UpgradeMode, UpgradeStatus
from upgrades.models import Release, Upgrade

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def signed_in(browser):
    User.objects.create_superuser("ops", password="console-pw")
    browser.get("/admin/login/")
    browser.fill("username", "ops")
    browser.fill("password", "console-pw")
    browser.click('input[type="submit"]')
    browser.wait_text("Fleet")
    return browser


@pytest.fixture
def release(db) -> Release:
    return Release.objects.create(version="v1", image_tag="v1", template_set="testbed", is_default=True)


def test_item_8_a_generated_key_pair_shows_its_public_key_on_the_node_page(signed_in):
    browser = signed_in
    browser.get("/admin/instances/node/add/")
    browser.fill("name", "keyed")
    browser.fill("address", "127.0.0.9")
    browser.click('[name="generate_key"]')
    browser.click('input[name="_continue"]')
    browser.wait_text("was added successfully")
    public = browser.text("#node-public-key code")
    assert public.startswith("ssh-ed25519 AAAA") and public.endswith("ccp-panel@keyed")
    assert "PRIVATE" not in browser.text()  # the private half is never shown


@pytest.mark.testbed
def test_item_5_a_health_check_that_cannot_run_says_why_on_the_instance_page(
    signed_in, make_node, release, celery_worker_thread
):
    browser = signed_in
    node = make_node(driver="ssh", address="127.0.0.1", ssh_port=free_port(), ssh_user="nobody")  # nothing listens
    instance = Instance.objects.create(
        name="Lost", slug="lost", node=node, install_dir="/srv/ccp/lost", ports={"web": free_port()}
    )
    browser.get(f"/admin/instances/instance/{instance.pk}/change/")
    browser.click_text("Check health")
    browser.wait_text("The health check could not run", css="#instance-summary", reload=True)
    error = browser.text("#instance-health-error")
    assert "lost" in error or "node" in error.lower()
    assert "Traceback" not in browser.text()
    instance.refresh_from_db()
    assert instance.health_error.startswith("The health check could not run: ")


def test_item_6_a_used_release_is_locked_and_the_admin_says_so(signed_in, release, make_instance):
    browser = signed_in
    instance = make_instance()
    Upgrade.objects.create(instance=instance, mode=UpgradeMode.RELEASE, release=release, status=UpgradeStatus.SUCCEEDED)
    browser.get(f"/admin/upgrades/release/{release.pk}/change/")
    assert "has been used by upgrades" in browser.text(".messagelist")
    assert not browser.has('input[name="image_tag"]') and not browser.has('input[name="version"]')
    assert browser.text(".field-image_tag .readonly") == "v1"
    browser.get("/admin/upgrades/release/")
    assert "yes (locked)" in browser.text("#result_list") and "the fleet default" in browser.text("#result_list")
    assert not browser.has('#result_list img[src*="icon-no"]')  # item 4: a boolean that is no error is words


def test_items_4_and_9_badges_titles_and_readable_audit_entries(signed_in, release, make_instance):
    browser = signed_in
    instance = make_instance(name="UX demo")
    for status in (UpgradeStatus.SUCCEEDED, UpgradeStatus.FAILED, UpgradeStatus.ROLLED_BACK, UpgradeStatus.RUNNING):
        Upgrade.objects.create(
            instance=instance,
            mode=UpgradeMode.IMAGE_ONLY,
            target_tag="v9",
            to_version="v9",
            status=status,
            error="the image 127.0.0.1:5500/ccp-test/app:v9 does not exist in the registry\ncompose said: …"
            if status != UpgradeStatus.SUCCEEDED
            else "",
        )
    browser.get("/admin/upgrades/upgrade/")
    states = {b.get_attribute("data-state"): b.get_attribute("class") for b in browser.find_all(".ccp-badge")}
    assert "ccp-badge-ok" in states["succeeded"] and "ccp-badge-bad" in states["failed"]
    assert "ccp-badge-warn" in states["rolled_back"] and "ccp-badge-busy" in states["running"]
    # Errors in words first (item 5): the sentence, not the command output after it.
    assert "does not exist in the registry" in browser.text("#result_list")
    assert "compose said" not in browser.text("#result_list")
    assert browser.driver.execute_script(
        "const r = document.querySelector('.results'); return r.scrollWidth <= r.clientWidth;"
    ), "the upgrade list scrolls sideways at 1366 px"
    browser.get("/admin/fleet/")
    assert "does not exist in the registry" in browser.text("#content-main")

    browser.get("/admin/instances/instance/")
    assert browser.driver.execute_script(
        "const r = document.querySelector('.results'); return r.scrollWidth <= r.clientWidth;"
    ), "the instance list scrolls sideways at 1366 px"
    assert browser.has('.ccp-badge[data-state="unknown"]')  # health not yet checked: a grey badge
    assert not browser.has('#result_list img[src*="icon-no"]')  # no red cross for "not registered"
    browser.get("/admin/instances/node/")
    assert "fingerprint" not in browser.text("#result_list thead").lower()  # long values live on the node's page
    assert browser.driver.execute_script(
        "const r = document.querySelector('.results'); return r.scrollWidth <= r.clientWidth;"
    )

    # An edit in the admin reads as a sentence in the audit log (not the stored JSON).
    LogEntry.objects.log_actions(
        user_id=User.objects.get(username="ops").pk,
        queryset=[instance],
        action_flag=CHANGE,
        change_message='[{"changed": {"fields": ["Domain"]}}]',
        single_object=True,
    )
    browser.get("/admin/admin/logentry/")
    assert "Changed Domain." in browser.text("#result_list") and '"changed"' not in browser.text("#result_list")


def test_item_6_approving_starts_unticked_on_the_upgrade_to_release_page(
    signed_in, release, make_instance, celery_worker_thread, tmp_path
):
    browser = signed_in
    instance = make_instance(
        install_dir=str(tmp_path / "tenant"),
        ports={"web": free_port(), "api": free_port(), "docs": free_port(), "extra": free_port()},
    )
    browser.get("/admin/instances/instance/")
    browser.click(f'#result_list input.action-select[value="{instance.pk}"]')
    browser.select("action", "Upgrade to release…")
    browser.click('button[name="index"]')
    browser.wait_for(lambda: browser.has(f'input[name="approve_{instance.pk}"]'), reload=True, what="the approval box")
    assert not browser.find(f'input[name="approve_{instance.pk}"]').is_selected()
