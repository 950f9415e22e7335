"""The operator's journey in a real browser (issue 13), as one test: every page an operator uses, in order,
on the testbed's real node, with a real Celery worker doing the work behind the pages.

Each numbered item of the issue has at least one assertion here or in test_console.py (marked "item N").
"""

import uuid
from pathlib import Path

import pytest
from django.contrib.auth.models import User

from instances.models import Attention, Instance
from tests.testbed.tenant import free_port
from tests.testbed.tenant_fixtures import after_up  # noqa: F401 - fixture shared
from upgrades import hooks

pytestmark = [pytest.mark.testbed, pytest.mark.django_db(transaction=True)]

FINAL = ("Succeeded", "Failed", "Rolled back", "Cancelled", "Interrupted")


def log_in(browser, username: str, password: str) -> None:
    browser.get("/admin/login/")
    browser.fill("username", username)
    browser.fill("password", password)
    browser.click('input[type="submit"]')
    browser.wait_text("Fleet")


def field(browser, name: str) -> str:
    """The text of a read-only field on an admin detail page."""
    return browser.text(f".field-{name} .readonly")


def wait_final(browser, timeout: float = 120) -> str:
    """On an upgrade, backup or restore page: reload until its status is final; returns it."""
    return browser.wait_for(
        lambda: (status := field(browser, "status")) in FINAL and status,
        timeout=timeout,
        reload=True,
        what="a final status",
    )


def open_instance(browser, instance: Instance) -> None:
    browser.get(f"/admin/instances/instance/{instance.pk}/change/")


def fits_the_screen(browser) -> bool:
    """Neither the page nor the changelist's table scrolls sideways at 1366 px."""
    return browser.driver.execute_script(
        "const r = document.querySelector('.results');"
        "return document.documentElement.scrollWidth <= 1366 && (!r || r.scrollWidth <= r.clientWidth);"
    )


def test_the_operators_journey(
    browser,
    ssh_node,
    docker_engine,
    celery_worker_thread,
    node_workdir,
    testbed_release,
    after_up,  # noqa: F811
):
    testbed_release("v2.0.0", "v2")  # an older default (v1) and a newer release the registry has images for
    User.objects.create_superuser("ops", password="journey-pw")
    log_in(browser, "ops", "journey-pw")

    # --- item 8: the admin's index shows Fleet first; "View site" is the dashboard ---------------------
    browser.get("/admin/")
    modules = [m.get_attribute("id") or m.text.split("\n")[0] for m in browser.find_all("#content-main .module")]
    assert modules[0] == "fleet-module", modules
    browser.click_text("View site")
    assert browser.path == "/admin/fleet/"
    assert "No node yet" in browser.text("#first-steps")  # the empty dashboard says how to add the first node

    # --- add a node: paste its key; check it (item 3) -------------------------------------------------
    name = f"web-{uuid.uuid4().hex[:6]}"
    browser.get("/admin/instances/node/add/")
    browser.fill("name", name)
    browser.fill("address", ssh_node.host)
    browser.fill("ssh_port", str(ssh_node.port))
    browser.fill("ssh_user", ssh_node.user)
    browser.fill("instance_root", str(node_workdir))
    browser.fill("private_key", Path(ssh_node.key_path).read_text())
    browser.click('input[name="_continue"]')
    browser.wait_text("was added successfully")
    assert "never checked" in browser.text("#node-check")
    assert browser.text("#node-public-key").startswith("ssh-")  # the public half of the pasted key
    browser.click_text("Check")
    browser.wait_text("ok", css="#node-check", reload=True)
    assert browser.has('#node-check .ccp-badge-ok[data-state="ok"]')  # item 4: a green badge
    assert browser.text("#node-docker")[0].isdigit() and browser.text("#node-compose")[0].isdigit()
    assert browser.text("#node-disk").endswith(("GB", "MB", "TB"))  # human units

    # --- add an instance on it: the template set's port names are offered (item 7) --------------------
    browser.click_text("Add an instance on this node")
    slug = f"j{uuid.uuid4().hex[:7]}"
    labels = [label.text for label in browser.find_all("label")]
    assert {"Port web:", "Port api:", "Port docs:", "Port extra:"} <= set(labels), labels
    assert browser.find('[name="protected_paths"]').tag_name == "textarea"
    assert browser.find('[name="protected_paths"]').get_attribute("value") == "mkdocs/"  # a path a line, no JSON
    browser.fill("name", "Journey tenant")
    browser.fill("slug", slug)
    ports = {name: free_port() for name in ("web", "api", "docs")}
    for port_name, port in ports.items():
        browser.fill(f"port_{port_name}", str(port))
    browser.click('input[name="_continue"]')
    assert "needs a port for 'extra' (EXTRA_PORT)" in browser.text(".errorlist")  # a save missing one is refused
    browser.fill("port_extra", str(free_port()))
    browser.click('input[name="_continue"]')
    browser.wait_text("was added successfully")
    instance = Instance.objects.get(slug=slug)
    assert instance.install_dir == f"{node_workdir}/{slug}"  # the node's instance root plus the slug
    assert "Journey tenant" in browser.driver.title or slug in browser.driver.title  # item 9: names, not ids

    # --- preview, then deploy from the preview page with its hash (items 2, 6) --------------------------
    browser.click("#button-preview")
    browser.wait_for(lambda: browser.has("#upgrade-to-this-release"), what="the preview's upgrade form")
    preview_hash = browser.find('#upgrade-to-this-release [name="preview_hash"]').get_attribute("value")
    assert len(preview_hash) >= 16 and preview_hash[:12] in browser.text("#upgrade-to-this-release")
    browser.click('#upgrade-to-this-release [name="approved"]')
    browser.click_text("Upgrade to this release")
    assert wait_final(browser) == "Succeeded"
    open_instance(browser, instance)
    assert browser.text("#instance-version") == "v1"
    assert "Deploy to v1" in browser.text("#instance-history")

    # --- check health: healthy, with when (item 2) ----------------------------------------------------
    browser.click_text("Check health")
    browser.wait_text("Healthy", css="#instance-health", reload=True)
    assert "checked" in browser.text("#instance-health")

    # --- Quick upgrade with a tag picked from the registry's list (item 7) ------------------------------
    browser.click("#button-quick-upgrade")
    assert "v2" in browser.text("#registry-tags") and "v3" in browser.text("#registry-tags")
    options = [o.text for o in browser.find_all('select[name="registry_tag"] option')]
    assert {"v1", "v2", "v3"} <= set(options), options
    browser.select("registry_tag", "v2")
    browser.click_text("Start the Quick upgrade")
    assert wait_final(browser) == "Succeeded"
    open_instance(browser, instance)
    assert browser.text("#instance-version") == "v2"
    newest = browser.find_all("#instance-history tr.history-upgrade")[0]
    assert "Quick upgrade" in newest.text and "Succeeded" in newest.text  # newest first

    # --- one-click revert: back to v1 through the same Quick-upgrade page, warned of the downgrade ------
    browser.click_text("Go back to the version before (v1)")
    assert "older" in browser.text("#downgrade-warning")
    browser.click_text("Start the Quick upgrade")
    assert "tick the box" in browser.text(".errorlist")  # a downgrade needs the tick
    browser.click('[name="confirm_downgrade"]')
    browser.click_text("Start the Quick upgrade")
    assert wait_final(browser) == "Succeeded"
    open_instance(browser, instance)
    assert browser.text("#instance-version") == "v1"

    # --- back up now; the backup's title names the instance (item 9) ------------------------------------
    browser.click_text("Back up now")
    assert wait_final(browser) == "Succeeded"
    assert browser.driver.title.startswith(f"Backup of {slug}, manual, ")

    # --- restore it -------------------------------------------------------------------------------------
    browser.get("/admin/instances/backup/")
    assert "node" in browser.text("#result_list thead").lower() and name in browser.text("#result_list")  # item 4
    browser.click("#result_list tbody tr input.action-select")
    browser.select("action", "Restore selected backup…")
    browser.click('button[name="index"]')
    browser.click_text(f"Yes, restore {slug} from this backup")
    browser.wait_text("queued")
    browser.get("/admin/instances/restore/")
    browser.click("#result_list tbody tr th a")
    assert f"onto {slug}" in browser.driver.title  # item 9
    assert wait_final(browser) == "Succeeded"

    # --- a failure: an upgrade whose rollback fails too raises attention (items 4, 5) -------------------
    compose = Path(instance.install_dir) / "docker-compose.yml"
    page = Path(instance.install_dir) / "mkdocs" / "index.md"
    good_compose = compose.read_bytes()

    def break_it(ctx):
        page.parent.mkdir(exist_ok=True)
        page.write_bytes(b"tampered\n")
        compose.write_text(compose.read_text().replace("services:", "services: [broken"))

    after_up(break_it)
    browser.get(f"/admin/instances/instance/{instance.pk}/quick-upgrade/")
    browser.fill("image_tag", "v2")  # free text remains possible
    browser.click_text("Start the Quick upgrade")
    assert wait_final(browser) == "Failed"
    hooks.clear()
    open_instance(browser, instance)
    assert browser.has('#instance-attention .ccp-badge-bad[data-state="attention"]')
    assert "failed" in browser.text("#instance-attention")
    assert Attention.objects.filter(instance=instance, resolved_at__isnull=True).exists()
    browser.get("/admin/instances/instance/?needs_attention=yes")
    assert slug in browser.text("#result_list") and fits_the_screen(browser)  # item 4: filter, column, width
    browser.get("/admin/fleet/")
    assert slug in browser.text("#content-main")

    # --- repaired by hand, then acknowledged with a note (item 2) --------------------------------------
    compose.write_bytes(good_compose)
    open_instance(browser, instance)
    browser.fill("note", "compose file restored by hand")
    browser.click_text("Acknowledge attention")
    browser.wait_text("resolved 1 attention record")
    assert browser.has("#instance-attention .ccp-badge-ok")
    history = browser.text("#instance-history")
    for what in ("Deploy", "Quick upgrade", "Backup", "Restore", "Attention", "Audit"):
        assert what in history, what
