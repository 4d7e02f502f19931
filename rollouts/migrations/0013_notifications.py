# Issue 17: notification subscriptions and their delivery log (docs/notifications.md).

import django.db.models.deletion
import rollouts.clock
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('rollouts', '0012_freezes'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='Subscription',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=100)),
                ('channel', models.CharField(choices=[('webhook', 'Webhook'), ('slack', 'Slack'), ('teams', 'Teams'), ('email', 'Email')], max_length=16)),
                ('target', models.CharField(max_length=2000)),
                ('placement', models.CharField(blank=True, default='', max_length=253)),
                ('label_selector', models.CharField(blank=True, default='', max_length=1000)),
                ('run_name', models.CharField(blank=True, default='', max_length=253)),
                ('events', models.JSONField(blank=True, default=list)),
                ('secret_encrypted', models.TextField(blank=True, default='', editable=False)),
                ('enabled', models.BooleanField(default=True)),
                ('created_by', models.CharField(blank=True, default='', max_length=150)),
                ('created_at', models.DateTimeField(default=rollouts.clock.precise_now)),
                ('owner', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='notification_subscriptions', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['name', 'id'],
            },
        ),
        migrations.CreateModel(
            name='Delivery',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('key', models.CharField(max_length=400)),
                ('kind', models.CharField(choices=[('gate-opened', 'gate opened'), ('approved', 'approval given'), ('rejected', 'approval rejected'), ('cluster-failing', 'cluster failing'), ('run-stuck', 'run stuck'), ('run-failed', 'run failed'), ('run-stopped', 'run stopped'), ('run-succeeded', 'run succeeded'), ('freeze-started', 'freeze started'), ('freeze-ended', 'freeze ended'), ('test', 'test message')], max_length=32)),
                ('payload', models.JSONField(default=dict)),
                ('status', models.CharField(choices=[('pending', 'Pending'), ('delivered', 'Delivered'), ('failed', 'Failed')], default='pending', max_length=16)),
                ('attempts', models.PositiveIntegerField(default=0)),
                ('next_attempt_at', models.DateTimeField()),
                ('last_error', models.TextField(blank=True, default='')),
                ('last_status', models.PositiveIntegerField(blank=True, null=True)),
                ('response_ms', models.PositiveIntegerField(blank=True, null=True)),
                ('created_at', models.DateTimeField()),
                ('retry_until', models.DateTimeField()),
                ('delivered_at', models.DateTimeField(blank=True, null=True)),
                ('subscription', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='rollouts.subscription')),
            ],
            options={
                'verbose_name_plural': 'deliveries',
                'ordering': ['-id'],
            },
        ),
        migrations.AddConstraint(
            model_name='subscription',
            constraint=models.UniqueConstraint(fields=('owner', 'name'), name='subscription_owner_name'),
        ),
        migrations.AddConstraint(
            model_name='subscription',
            constraint=models.UniqueConstraint(condition=models.Q(('owner__isnull', True)), fields=('name',), name='subscription_team_name'),
        ),
        migrations.AddIndex(
            model_name='delivery',
            index=models.Index(condition=models.Q(('status', 'pending')), fields=['next_attempt_at'], name='delivery_due'),
        ),
        migrations.AddConstraint(
            model_name='delivery',
            constraint=models.UniqueConstraint(fields=('subscription', 'key'), name='delivery_subscription_key'),
        ),
    ]
