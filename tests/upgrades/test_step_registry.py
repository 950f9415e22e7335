"""Modes as a registry, steps with stable keys, and the runner's step timeout (no node needed: the
panel host's own driver runs the commands)."""

import importlib
import time
from pathlib import Path

import pytest
from django.apps import apps

from instances.drivers import LocalDriver
from instances.models import Attention
from instances.operations.models import OperationStep
from upgrades.choices import StepStatus, UpgradeMode, UpgradeStatus
from upgrades.models import Upgrade
from upgrades.modes import all_modes, mode_for
from upgrades.runner import Step, StepContext, StepRunner, finished_step_keys

pytestmark = pytest.mark.django_db


@pytest.fixture
def upgrade(make_instance) -> Upgrade:
    return Upgrade.objects.create(instance=make_instance(), mode=UpgradeMode.IMAGE_ONLY, status=UpgradeStatus.RUNNING)


def context(upgrade: Upgrade) -> StepContext:
    return StepContext(upgrade=upgrade, driver=LocalDriver(), secrets=[])


def test_every_mode_choice_has_one_registered_mode_with_unique_step_keys(upgrade):
    assert set(all_modes()) == set(UpgradeMode.values)
    for choice, mode in all_modes().items():
        assert mode_for(choice) is mode
        keys = [step.key for step in mode.steps(context(upgrade))]
        assert len(keys) == len(set(keys)), f"{choice}: a step key appears twice in {keys}"
        assert all(key.isidentifier() for key in keys)


def test_resume_finds_finished_steps_by_key_after_a_label_was_reworded(upgrade):
    # Recorded by an earlier version of the mode, whose label for the step read differently.
    OperationStep.objects.create(
        kind="upgrade",
        operation_id=upgrade.pk,
        position=1,
        key="write",
        name="write the old way",
        status=StepStatus.SUCCEEDED,
        started_at=upgrade.created_at,
    )
    ran = []
    ctx = context(upgrade)
    ctx.state["done_steps"] = finished_step_keys(upgrade)
    steps = [
        Step("write", "write rendered files (reworded)", lambda c: ran.append("write")),
        Step("after", "what comes after", lambda c: ran.append("after")),
    ]

    assert StepRunner(ctx).run(steps, []) == UpgradeStatus.SUCCEEDED
    assert ran == ["after"]
    assert list(upgrade.steps.values_list("key", "name")) == [
        ("write", "write the old way"),
        ("after", "what comes after"),
    ]


def test_the_key_migration_backfills_existing_rows_from_their_labels(upgrade):
    for position, label in enumerate(["pull images", "start containers (up -d --wait --remove-orphans)", "Odd one"]):
        OperationStep.objects.create(
            kind="upgrade",
            operation_id=upgrade.pk,
            position=position + 1,
            key=label,  # as migration 0005 copied them from the old step table
            name=label,
            started_at=upgrade.created_at,
        )

    importlib.import_module("upgrades.migrations.0006_step_keys_from_labels").backfill_keys(apps, None)

    assert list(upgrade.steps.values_list("key", flat=True)) == ["pull_images", "up", "odd_one"]


def test_a_step_past_its_timeout_fails_naming_it_and_ends_the_command_it_ran(upgrade, settings, tmp_path: Path):
    settings.CCP_STEP_TIMEOUTS = {"slow": 1}
    marker = tmp_path / "still-running"
    # The command would write the marker after 3 s: ended at the deadline, it never does.
    slow = Step("slow", "a slow step", lambda c: c.driver.run(["sh", "-c", f"sleep 3; touch {marker}"], timeout=60))
    started = time.monotonic()

    status = StepRunner(context(upgrade)).run([slow], [])

    assert time.monotonic() - started < 2.5
    upgrade.refresh_from_db()
    assert status == upgrade.status == UpgradeStatus.FAILED
    sentence = 'The step "a slow step" did not finish within its timeout of 1 s and was stopped.'
    assert upgrade.error == sentence
    assert upgrade.steps.get(key="slow").status == StepStatus.FAILED
    time.sleep(2.5)
    assert not marker.exists()


def test_a_step_that_changed_the_node_and_timed_out_is_rolled_back(upgrade, settings):
    settings.CCP_STEP_TIMEOUTS = {"change": 0.5}
    rolled_back = []
    steps = [
        Step("change", "change and dawdle", lambda c: time.sleep(1), changes=True),  # no node call: checked at its end
        Step("never", "never reached", lambda c: pytest.fail("ran after a timed-out step")),
    ]
    rollback = [Step("undo", "undo", lambda c: rolled_back.append(c.driver.run(["true"]).exit_code))]

    status = StepRunner(context(upgrade)).run(steps, rollback)

    upgrade.refresh_from_db()
    assert status == upgrade.status == UpgradeStatus.ROLLED_BACK
    assert "change and dawdle" in upgrade.error and "0.5 s" in upgrade.error
    assert rolled_back == [0]  # the rollback step ran under its own deadline, not the expired one
    assert list(upgrade.steps.values_list("key", "status")) == [("change", "failed"), ("undo", "succeeded")]
    assert not Attention.objects.filter(instance=upgrade.instance).exists()
