"""Live progress of an upgrade over HTTP: a real worker runs a full upgrade whose tenant script prints a
line a second (and a secret); a client polls GET /api/v1/upgrades/{id}/progress/ on a live server and
sees the running step's output grow, redacted, with step N of M, before the step ends."""

import json
import time
import urllib.error
import urllib.request

import pytest
from rest_framework.authtoken.models import Token

from instances.groups import VIEWERS
from tests.helpers import make_user
from upgrades.choices import UpgradeMode, UpgradeStatus
from upgrades.services import upgrade_request

from .helpers import install_script, wait_final

pytestmark = [pytest.mark.testbed, pytest.mark.django_db(transaction=True)]

STEP = "run the upgrade script"  # its label; its key is run_script
# Eight lines a second apart, each naming the tenant's secret; then the upgrade itself.
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


def get(url: str, token: str | None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Authorization": f"Token {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the test's live server
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.mark.timeout(300)
def test_a_client_polling_the_progress_endpoint_sees_the_running_steps_output_grow(
    make_tenant, celery_worker_thread, live_server
):
    tenant = make_tenant()
    secret = tenant.instance.get_secrets()["APP_SECRET"]
    install_script(tenant, SCRIPT)
    token = Token.objects.create(user=make_user("progress-viewer", VIEWERS)).key
    upgrade = upgrade_request(instance=tenant.instance, mode=UpgradeMode.FULL, image_tag="v2")
    url = f"{live_server.url}/api/v1/upgrades/{upgrade.pk}/progress/"

    bodies, tails, numbers = [], [], set()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status, body = get(url, token)
        assert status == 200, body
        bodies.append(body)
        data = json.loads(body)
        running = [s for s in data["steps"] if s["status"] == "running"]
        if running and running[0]["label"] == STEP and running[0]["output"]:
            tails.append(running[0]["output"])
            numbers.add((data["step_number"], data["step_total"], data["current_step"]))
        if data["is_final"] or any(s["label"] == STEP and s["status"] != "running" for s in data["steps"]):
            break
        time.sleep(0.5)

    # At least two different, non-empty tails of the same step while it was running.
    assert len(set(tails)) >= 2, tails
    assert all(t.startswith("progress line 1 ") for t in tails)
    assert any("progress line 2 " in t for t in tails) and "secret=[redacted]" in tails[0]
    # Step N of M: while it ran, the script was step N of all the steps the upgrade went through.
    ((number, total, key),) = numbers
    labels = [s.name for s in wait_final(upgrade).steps.filter(is_rollback=False)]
    assert key == "run_script" and total == len(labels) and number == labels.index(STEP) + 1
    # The secret never left the worker: not in any answer, not in the stored steps.
    assert not any(secret in body for body in bodies)
    upgrade.refresh_from_db()
    assert upgrade.status == UpgradeStatus.SUCCEEDED, upgrade.error
    assert not any(secret in s.output for s in upgrade.steps.all())
    final = json.loads(get(url, token)[1])
    assert final["is_final"] and final["status"] == "succeeded" and final["elapsed_seconds"] >= 8
    script_step = next(s for s in final["steps"] if s["key"] == "run_script")
    assert "progress line 8 secret=[redacted]" in script_step["output"] and "upgrade finished" in script_step["output"]

    # `since`: the last step's output from an offset the client saw; the same permission as viewing it.
    last = final["steps"][-1]
    newer = json.loads(get(f"{url}?since={last['output_offset']}", token)[1])["steps"][-1]
    assert newer["output"] == "" and newer["output_since"] == last["output_offset"]
    assert get(url, None)[0] == 401
    assert get(url, Token.objects.create(user=make_user("no-groups")).key)[0] == 403


@pytest.mark.timeout(300)
def test_compose_up_writes_its_output_into_the_running_step(make_tenant, celery_worker_thread):
    tenant = make_tenant()
    upgrade = wait_final(upgrade_request(instance=tenant.instance, mode=UpgradeMode.IMAGE_ONLY, image_tag="v2"))

    assert upgrade.status == UpgradeStatus.SUCCEEDED, upgrade.error
    up = upgrade.steps.get(name="start containers (up -d --wait)")
    # compose's own lines (streamed as they came), one per container it started and waited for
    assert "Container" in up.output and tenant.instance.compose_project in up.output, up.output
    assert up.output_offset >= len(up.output) > 0
