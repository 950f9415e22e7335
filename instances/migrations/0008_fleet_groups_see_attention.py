from django.db import migrations

from instances.groups import sync_fleet_groups


class Migration(migrations.Migration):
    """Attention records and preview runs are new models: viewers and operators may see them."""

    dependencies = [
        ("instances", "0007_relocate_permission"),
        ("upgrades", "0003_keep_history"),
    ]

    operations = [migrations.RunPython(sync_fleet_groups, migrations.RunPython.noop)]
