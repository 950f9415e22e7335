# Issue 10: first deploys, and the statuses of an upgrade or step whose worker died.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('upgrades', '0001_initial'),
    ]

    operations = [
        migrations.AddField(
            model_name='upgrade',
            name='is_first_deploy',
            field=models.BooleanField(default=False, help_text='The instance had no files on the node: this upgrade deployed it.'),
        ),
        migrations.AlterField(
            model_name='upgrade',
            name='status',
            field=models.CharField(choices=[('pending', 'Pending'), ('running', 'Running'), ('succeeded', 'Succeeded'), ('failed', 'Failed'), ('rolled_back', 'Rolled back'), ('rolled_back_interrupted', 'Rolled back (interrupted)'), ('cancelled', 'Cancelled'), ('interrupted', 'Interrupted')], default='pending', max_length=32),
        ),
        migrations.AlterField(
            model_name='upgradestep',
            name='status',
            field=models.CharField(choices=[('running', 'Running'), ('succeeded', 'Succeeded'), ('failed', 'Failed'), ('skipped', 'Skipped'), ('interrupted', 'Interrupted')], default='running', max_length=16),
        ),
    ]
