# Hub connections, member credentials and the mirrored-object marks (issue 7).

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('rollouts', '0004_event_audit_indexes'),
    ]

    operations = [
        migrations.CreateModel(
            name='HubConnection',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=253, unique=True)),
                ('context', models.CharField(blank=True, default='', max_length=253)),
                ('kubeconfig_encrypted', models.TextField(default='', editable=False)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('enabled', models.BooleanField(default=True)),
                ('watch_state', models.JSONField(blank=True, default=dict)),
                ('last_sync', models.DateTimeField(blank=True, null=True)),
                ('last_error', models.TextField(blank=True, default='')),
                ('last_error_at', models.DateTimeField(blank=True, null=True)),
                ('failures', models.PositiveIntegerField(default=0)),
                ('backoff_until', models.DateTimeField(blank=True, null=True)),
                ('lease_until', models.DateTimeField(blank=True, null=True)),
                ('warnings', models.JSONField(blank=True, default=list)),
            ],
            options={
                'ordering': ['name'],
                'abstract': False,
            },
        ),
        migrations.CreateModel(
            name='MemberCredential',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=253, unique=True)),
                ('context', models.CharField(blank=True, default='', max_length=253)),
                ('kubeconfig_encrypted', models.TextField(default='', editable=False)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
            ],
            options={
                'ordering': ['name'],
                'abstract': False,
            },
        ),
        migrations.CreateModel(
            name='MirroredObject',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(max_length=63)),
                ('namespace', models.CharField(blank=True, default='', max_length=253)),
                ('name', models.CharField(max_length=253)),
                ('hub_uid', models.CharField(blank=True, default='', max_length=64)),
                ('hub_resource_version', models.CharField(blank=True, default='', max_length=64)),
                ('connection', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='mirrored', to='rollouts.hubconnection')),
            ],
            options={
                'indexes': [models.Index(fields=['connection', 'kind'], name='rollouts_mi_connect_fd4909_idx')],
                'constraints': [models.UniqueConstraint(fields=('kind', 'namespace', 'name'), name='mirroredobject_unique')],
            },
        ),
    ]
