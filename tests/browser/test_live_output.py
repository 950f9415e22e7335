"""Issue 13, item 1 in Chromium: an upgrade's page shows the running step's output growing while the step
runs — without reloading the page — redacted. A real worker runs a full upgrade whose tenant script prints
a line a second (and the tenant's secret)."""

import time

import pytest
from django.contrib.auth.models import User

from tests.upgrades.helpers import install_script, wait_final
from upgrades.choices import UpgradeMode, UpgradeStatus
from upgrades.services import upgrade_request

pytestmark = [pytest.mark.slow, pytest.mark.testbed, pytest.mark.django_db(transaction=True)]

SCRIPT = """#!/bin/sh
set -eu
target="$1"
i=1
while [ "$i" -le 8 ]; do
  echo "progress line $i secret=$(sed -n 's/^APP_SECRET=//p' .env)"
  i=$((i + 1))
  sleep 1
done
sed -i "s/^IMAGE_TAG=.*/IMAGE_TAG=$target/" .env
docker compose up --detach --wait --wait-timeout 60
echo "upgrade finished"
"""

# The run_script step's row on the page: its status, and the text of its output row (if it has one yet).
READ_STEP = """
var row = document.querySelector('tr.ccp-step[data-key="run_script"]');
if (!row) { return null; }
var next = row.nextElementSibling;
var out = next && next.classList.contains('ccp-step-output') ? next.textContent : '';
return [row.dataset.status, out, window.ccpLoadedOnce === true];
"""


@pytest.mark.timeout(300)
def test_the_upgrade_page_shows_the_running_steps_output_grow_without_a_reload(
    browser, make_tenant, celery_worker_thread
):
    User.objects.create_superuser("ops", password="console-pw")
    browser.get("/admin/login/")
    browser.fill("username", "ops")
    browser.fill("password", "console-pw")
    browser.click('input[type="submit"]')
    browser.wait_text("Fleet")

    tenant = make_tenant()
    secret = tenant.instance.get_secrets()["APP_SECRET"]
    install_script(tenant, SCRIPT)
    upgrade = upgrade_request(instance=tenant.instance, mode=UpgradeMode.FULL, image_tag="v2")
    browser.get(f"/admin/upgrades/upgrade/{upgrade.pk}/change/")
    browser.driver.execute_script("window.ccpLoadedOnce = true;")  # gone if the page reloads

    tails, seen_running = [], False
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = browser.driver.execute_script(READ_STEP)
        if found:
            status, output, same_page = found
            assert same_page, "the page reloaded: the progress block must redraw in place"
            if status == "running":
                seen_running = True
                if output.strip():
                    tails.append(output.strip())
            elif seen_running or status in ("succeeded", "failed"):
                break
        time.sleep(0.4)
    browser.shot("after the script step")

    # At least two different, non-empty tails of the same step while it was running, each redacted.
    assert len(set(tails)) >= 2, tails
    assert all(tail.startswith("progress line 1 secret=[redacted]") for tail in tails), tails
    assert not any(secret in tail for tail in tails)
    upgrade = wait_final(upgrade)
    assert upgrade.status == UpgradeStatus.SUCCEEDED, upgrade.error
    browser.wait_text("Succeeded", css="#ccp-progress-summary")
    assert secret not in browser.text()
