"""Full upgrade: the tenant's own script runs detached on the node; it survives the SSH connection
dropping and the Celery worker being killed and replaced, and its whole log ends up in the steps."""

import time
from pathlib import Path

import pytest

from upgrades.choices import UpgradeMode, UpgradeStatus
from upgrades.services import upgrade_request

from .helpers import install_script, kill_group, start_worker_process, wait_final

pytestmark = [pytest.mark.testbed, pytest.mark.django_db(transaction=True)]


def wait_for_step(upgrade, name: str, contains: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        step = upgrade.steps.filter(name=name).order_by("-position").first()
        if step and contains in step.output:
            return
        time.sleep(0.3)
    raise AssertionError(f"step {name!r} never showed {contains!r}")


@pytest.mark.timeout(300)
def test_full_upgrade_survives_a_dropped_connection_and_a_worker_restart(
    make_tenant, worker_process_env, ssh_node, tmp_path
):
    tenant = make_tenant()
    install_script(tenant)
    log = tmp_path / "worker.log"
    first = start_worker_process(worker_process_env, log)
    second = None
    try:
        upgrade = upgrade_request(instance=tenant.instance, mode=UpgradeMode.FULL, image_tag="v2")
        wait_for_step(upgrade, "run the upgrade script", "upgrade line 3 ")
        # Drop the node's SSH connections (the worker's among them) ...
        assert ssh_node.drop_connections() >= 1
        # ... and kill the worker outright, as a restarting agent would.
        kill_group(first)
        upgrade.refresh_from_db()
        assert upgrade.status == UpgradeStatus.RUNNING
        second = start_worker_process(worker_process_env, log)
        upgrade = wait_final(upgrade, timeout=180)
    finally:
        for process in (first, second):
            if process and process.poll() is None:
                kill_group(process)

    assert upgrade.status == UpgradeStatus.SUCCEEDED, f"{upgrade.error}\n{log.read_text()[-3000:]}"
    final_log = upgrade.steps.filter(name="run the upgrade script", status="succeeded").get().output
    for i in range(1, 21):
        assert f"upgrade line {i} of 20 towards v2\n" in final_log
    assert "upgrade finished" in final_log
    assert tenant.images() == {"v2"} and tenant.all_healthy()
    # exactly one run of the script: one job directory on the node
    assert len(list((tenant.path / ".ccp" / "jobs").iterdir())) == 1


@pytest.mark.timeout(300)
def test_a_secret_echoed_by_the_script_never_reaches_the_stored_steps(make_tenant, celery_worker_thread):
    tenant = make_tenant()
    secret = tenant.instance.get_secrets()["APP_SECRET"]
    install_script(
        tenant,
        "#!/bin/sh\nset -eu\n"
        'echo "leaking $(grep ^APP_SECRET= .env)"\n'
        "echo \"and again: $(sed -n 's/^APP_SECRET=//p' .env) done\"\n"
        'echo "failing on purpose" >&2\nexit 3\n',
    )

    upgrade = wait_final(upgrade_request(instance=tenant.instance, mode=UpgradeMode.FULL, image_tag="v2"))

    assert upgrade.status == UpgradeStatus.FAILED
    assert "exited with code 3" in upgrade.error
    outputs = "".join(upgrade.steps.values_list("output", flat=True)) + upgrade.error
    assert "leaking APP_SECRET=[redacted]" in outputs and "and again: [redacted] done" in outputs
    assert secret not in outputs
    tenant.instance.refresh_from_db()
    assert "failed" in tenant.instance.attention


def process_group_members(pgid: int) -> list[int]:
    """The processes of a process group still alive on this host (the testbed node is this host)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


@pytest.mark.timeout(300)
def test_a_script_past_its_step_timeout_is_stopped_on_the_node_and_the_upgrade_fails(
    make_tenant, celery_worker_thread, settings
):
    settings.CCP_STEP_TIMEOUTS = {"run_script": 4}
    tenant = make_tenant()
    install_script(tenant, '#!/bin/sh\necho "started towards $1"\nsleep 120\necho "changed the node" > late\n')

    started = time.monotonic()
    upgrade = wait_final(upgrade_request(instance=tenant.instance, mode=UpgradeMode.FULL, image_tag="v2"))

    sentence = 'The step "run the upgrade script" did not finish within its timeout of 4 s and was stopped.'
    assert upgrade.status == UpgradeStatus.FAILED and sentence in upgrade.error
    assert time.monotonic() - started < 90
    step = upgrade.steps.get(key="run_script")
    assert step.status == "failed" and "started towards v2" in step.output and sentence in step.output
    assert "stopped the job's processes on the node" in step.output
    assert not upgrade.steps.filter(key="health_check").exists()  # nothing ran after the failed step
    # The script and everything it started are gone from the node, its end recorded as 143.
    job = tenant.path / ".ccp" / "jobs" / upgrade.detached_job_id
    assert (job / "rc").read_text().strip() == "143"
    assert process_group_members(int((job / "pid").read_text())) == []
    # Full mode has no automatic rollback: the instance needs attention, naming the step.
    tenant.instance.refresh_from_db()
    assert "run the upgrade script" in tenant.instance.attention and "4 s" in tenant.instance.attention
    assert tenant.images() == {"v1"} and not (tenant.path / "late").exists()
