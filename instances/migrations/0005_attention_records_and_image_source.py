# Issue 10: attention becomes a record with a lifecycle; a node can name another node as its image source.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def attention_text_to_records(apps, schema_editor):
    """An instance flagged before attention became a record keeps its flag, unresolved."""
    Instance = apps.get_model("instances", "Instance")
    Attention = apps.get_model("instances", "Attention")
    for instance in Instance.objects.exclude(attention=""):
        Attention.objects.create(instance=instance, reason=instance.attention)


class Migration(migrations.Migration):

    dependencies = [
        ('instances', '0004_backup_schedule'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='node',
            name='image_source',
            field=models.ForeignKey(blank=True, help_text='For a node without registry access: another node whose engine holds images the panel host does not have (e.g. images built there). Images are shipped from the panel host first.', null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='instances.node'),
        ),
        migrations.CreateModel(
            name='Attention',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('reason', models.TextField()),
                ('operation_kind', models.CharField(blank=True, default='', help_text='upgrade, backup or restore: the operation that raised it.', max_length=16)),
                ('operation_id', models.BigIntegerField(blank=True, null=True)),
                ('raised_at', models.DateTimeField(auto_now_add=True)),
                ('resolved_at', models.DateTimeField(blank=True, null=True)),
                ('resolution', models.TextField(blank=True, default='', help_text="The operator's note, or which operation resolved it.")),
                ('instance', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='attentions', to='instances.instance')),
                ('resolved_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['-raised_at', '-pk'],
                'indexes': [models.Index(fields=['instance', 'resolved_at'], name='instances_a_instanc_4824e5_idx')],
            },
        ),
        migrations.RunPython(attention_text_to_records, migrations.RunPython.noop),
        migrations.RemoveField(
            model_name='instance',
            name='attention',
        ),
    ]
