from django.db import migrations

from instances.groups import sync_fleet_groups


class Migration(migrations.Migration):
    dependencies = [
        ("instances", "0001_initial"),
        ("upgrades", "0001_initial"),
        ("admin", "0003_logentry_add_action_flag_choices"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(sync_fleet_groups, migrations.RunPython.noop)]
