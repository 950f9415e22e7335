"""The progress record (instances.operations.progress): output stored while a step runs, throttled,
redacted even when a secret arrives in two pieces; the endpoint's `since` and `tail`; and the move of
the upgrade steps' old table into it (a real migration, back and forth)."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from instances.operations import progress
from instances.operations.models import OperationStep
from upgrades.models import Upgrade

pytestmark = pytest.mark.django_db

SECRET = "s3cret-value-42"


def stored(step: progress.StepOutput) -> OperationStep:
    return OperationStep.objects.get(pk=step.record.pk)


def test_output_is_stored_while_the_step_runs_at_most_once_a_second_or_every_64_kib(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    out = progress.step_open(kind="backup", operation_id=1, name="archive mkdocs.tar.gz", key="archive:mkdocs")
    out.write("first line\n")  # the first write is stored at once
    assert stored(out).output == "first line\n"
    clock[0] += 0.5
    out.write("second line\n")
    assert stored(out).output == "first line\n"  # within the second: waits
    clock[0] += 0.6
    out.write("third line\n")
    assert stored(out).output == "first line\nsecond line\nthird line\n"
    out.write("x" * progress.FLUSH_CHARS)  # 64 KiB waiting: stored at once, only the tail kept
    row = stored(out)
    assert row.output.endswith("x" * 100) and len(row.output) == progress.OUTPUT_TAIL
    assert row.output_offset == len("first line\nsecond line\nthird line\n") + progress.FLUSH_CHARS
    out.progress(10, 20)
    clock[0] += 1
    out.progress(15)
    assert (stored(out).bytes_done, stored(out).bytes_total) == (15, 20)
    out.close("succeeded", "done")
    row = stored(out)
    assert row.status == "succeeded" and row.finished_at and row.output.endswith("x\ndone")


def test_a_secret_split_over_two_writes_is_never_stored_even_in_part():
    out = progress.step_open(kind="upgrade", operation_id=7, name="run the upgrade script", secrets=[SECRET, ""])
    out.write("token is s3cret-")
    out.flush()
    assert stored(out).output == "token is "  # the possible start of the secret is held back
    out.write("value-42 and s3")
    out.flush()
    assert stored(out).output == "token is [redacted] and "
    out.close("failed", f"exit 3 ({SECRET})")
    row = stored(out)
    assert row.output == "token is [redacted] and s3\nexit 3 ([redacted])" and SECRET not in row.output


def test_the_endpoint_gives_the_tail_or_what_is_new_since_an_offset(api, viewer, make_instance):
    upgrade = Upgrade.objects.create(
        instance=make_instance(), mode="full", to_version="v2", status="running", started_at=timezone.now()
    )
    progress.step_record(kind="upgrade", operation_id=upgrade.pk, name="precheck", status="succeeded", output="ok")
    out = progress.step_open(kind="upgrade", operation_id=upgrade.pk, name="run the upgrade script")
    out.write("line 1\nline 2\n")
    url = f"/api/v1/upgrades/{upgrade.pk}/progress/"

    data = api(viewer).get(url).json()
    assert data["status"] == "running" and not data["is_final"] and data["step_number"] == 2
    assert data["current_step"] == "run the upgrade script" and data["step_total"] is None
    assert [(s["key"], s["status"], s["output"]) for s in data["steps"]] == [
        ("precheck", "succeeded", "ok"),
        ("run the upgrade script", "running", "line 1\nline 2\n"),
    ]
    offset = data["steps"][-1]["output_offset"]
    out.write("line 3\n")
    out.flush()
    newer = api(viewer).get(url, {"since": offset, "tail": 3}).json()["steps"]
    assert newer[-1]["output"] == "line 3\n" and newer[-1]["output_since"] == offset
    assert newer[0]["output"] == "ok"
    assert api(viewer).get(f"/api/v1/upgrades/{upgrade.pk + 1000}/progress/").status_code == 404
    assert api(viewer).get(f"/api/v1/backups/{upgrade.pk + 1000}/progress/").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_the_upgrade_steps_move_into_the_progress_record_and_back():
    executor = MigrationExecutor(connection)
    before = [("upgrades", "0004_instancelock_moved_to_instances"), ("instances", "0010_operation_step")]
    after = [("upgrades", "0005_steps_moved_to_operation_step")]
    try:
        executor.migrate(before)
        old = executor.loader.project_state(before).apps
        node = old.get_model("instances", "Node").objects.create(name="n", address="127.0.0.1", driver="local")
        instance = old.get_model("instances", "Instance").objects.create(
            name="m", slug="m", node=node, install_dir="/srv/m", compose_project="m", ports={}
        )
        upgrade = old.get_model("upgrades", "Upgrade").objects.create(instance=instance, mode="full")
        old.get_model("upgrades", "UpgradeStep").objects.create(
            upgrade=upgrade, position=1, name="precheck", status="succeeded", started_at=timezone.now(), output="ok"
        )

        executor = MigrationExecutor(connection)
        executor.migrate(after)
        moved = OperationStep.objects.get(kind="upgrade", operation_id=upgrade.pk)
        assert (moved.position, moved.key, moved.name, moved.output, moved.output_offset) == (
            1,
            "precheck",
            "precheck",
            "ok",
            2,
        )

        executor = MigrationExecutor(connection)
        executor.migrate(before)
        back = executor.loader.project_state(before).apps.get_model("upgrades", "UpgradeStep").objects.get()
        assert (back.upgrade_id, back.name, back.output) == (upgrade.pk, "precheck", "ok")
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
