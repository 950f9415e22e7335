# Upgrade steps become rows of the operation layer's one progress record (instances.OperationStep,
# keyed by kind "upgrade" and the upgrade's id): copied over with their output, then the old table goes.

from django.db import migrations
from django.db.models.functions import Length


def copy_steps(apps, schema_editor):
    UpgradeStep = apps.get_model("upgrades", "UpgradeStep")
    OperationStep = apps.get_model("instances", "OperationStep")
    rows = UpgradeStep.objects.annotate(output_length=Length("output")).order_by("upgrade_id", "position")
    OperationStep.objects.bulk_create(
        (
            OperationStep(
                kind="upgrade",
                operation_id=step.upgrade_id,
                position=step.position,
                key=step.name,
                name=step.name,
                is_rollback=step.is_rollback,
                status=step.status,
                started_at=step.started_at,
                finished_at=step.finished_at,
                output=step.output,
                output_offset=step.output_length or 0,
            )
            for step in rows.iterator(chunk_size=1000)
        ),
        batch_size=1000,
    )


def copy_steps_back(apps, schema_editor):
    UpgradeStep = apps.get_model("upgrades", "UpgradeStep")
    OperationStep = apps.get_model("instances", "OperationStep")
    Upgrade = apps.get_model("upgrades", "Upgrade")
    existing = set(Upgrade.objects.values_list("pk", flat=True))
    UpgradeStep.objects.bulk_create(
        (
            UpgradeStep(
                upgrade_id=step.operation_id,
                position=step.position,
                name=step.name,
                is_rollback=step.is_rollback,
                status=step.status,
                started_at=step.started_at,
                finished_at=step.finished_at,
                output=step.output,
            )
            for step in OperationStep.objects.filter(kind="upgrade").iterator(chunk_size=1000)
            if step.operation_id in existing
        ),
        batch_size=1000,
    )
    OperationStep.objects.filter(kind="upgrade").delete()


class Migration(migrations.Migration):

    dependencies = [
        ('instances', '0010_operation_step'),
        ('upgrades', '0004_instancelock_moved_to_instances'),
    ]

    operations = [
        migrations.RunPython(copy_steps, copy_steps_back),
        migrations.DeleteModel(name='UpgradeStep'),
    ]
