# The per-instance operation lock now lives in instances.operations (instances 0008 took over its
# state). State only: the table upgrades_instancelock stays, owned by the model in `instances`.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('instances', '0008_instancelock_moved_here'),
        ('upgrades', '0003_keep_history'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name='InstanceLock')],
            database_operations=[],
        ),
    ]
