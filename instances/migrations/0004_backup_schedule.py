from django.db import migrations

from instances.backups.schedule import ensure_backup_schedule, remove_backup_schedule
from instances.groups import sync_fleet_groups


def forwards(apps, schema_editor):
    ensure_backup_schedule(apps, schema_editor)
    sync_fleet_groups(apps, schema_editor)  # the new Restore model's permissions reach the groups


class Migration(migrations.Migration):
    dependencies = [
        ("instances", "0003_restore"),
        ("upgrades", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(forwards, remove_backup_schedule)]
