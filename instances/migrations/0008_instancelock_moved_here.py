# The per-instance operation lock moves from `upgrades` into the operation layer of `instances`
# (instances.operations). State only: the table keeps its name, upgrades_instancelock, and its rows.

import django.db.models.deletion
from django.db import migrations, models

from instances.groups import sync_fleet_groups


class Migration(migrations.Migration):

    dependencies = [
        ('instances', '0007_relocate_permission'),
        ('upgrades', '0003_keep_history'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='InstanceLock',
                    fields=[
                        ('instance', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='lock', serialize=False, to='instances.instance')),
                        ('kind', models.CharField(choices=[('upgrade', 'Upgrade'), ('backup', 'Backup'), ('restore', 'Restore')], max_length=16)),
                        ('operation_id', models.BigIntegerField()),
                        ('owner', models.CharField(blank=True, default='', help_text='host:pid of the worker process holding the lock.', max_length=200)),
                        ('acquired_at', models.DateTimeField(auto_now_add=True)),
                        ('heartbeat_at', models.DateTimeField()),
                    ],
                    options={
                        'db_table': 'upgrades_instancelock',
                    },
                ),
            ],
            database_operations=[],
        ),
        # The lock's permissions now belong to `instances`: the groups get them as before.
        migrations.RunPython(sync_fleet_groups, migrations.RunPython.noop),
    ]
