# The one progress record of every long operation (instances.operations.progress): upgrades, deploys,
# backups and restores all write their steps here. Upgrade steps move in from upgrades_upgradestep
# (upgrades 0005 copies them and drops the old table).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('instances', '0009_domain_is_a_hostname'),
    ]

    operations = [
        migrations.CreateModel(
            name='OperationStep',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(choices=[('upgrade', 'Upgrade'), ('backup', 'Backup'), ('restore', 'Restore')], max_length=16)),
                ('operation_id', models.BigIntegerField()),
                ('position', models.PositiveIntegerField()),
                ('key', models.CharField(max_length=100)),
                ('name', models.CharField(help_text="What the operator reads (the step's label).", max_length=200)),
                ('is_rollback', models.BooleanField(default=False)),
                ('status', models.CharField(choices=[('running', 'Running'), ('succeeded', 'Succeeded'), ('failed', 'Failed'), ('skipped', 'Skipped'), ('interrupted', 'Interrupted')], default='running', max_length=16)),
                ('started_at', models.DateTimeField()),
                ('finished_at', models.DateTimeField(blank=True, null=True)),
                ('output', models.TextField(blank=True, default='', help_text="The tail of the step's output, secrets redacted.")),
                ('output_offset', models.BigIntegerField(default=0, help_text='Characters written to the output so far (the stored tail ends there).')),
                ('bytes_done', models.BigIntegerField(blank=True, null=True)),
                ('bytes_total', models.BigIntegerField(blank=True, null=True)),
            ],
            options={
                'ordering': ['kind', 'operation_id', 'position'],
                'constraints': [models.UniqueConstraint(fields=('kind', 'operation_id', 'position'), name='operation_step_position')],
            },
        ),
    ]
