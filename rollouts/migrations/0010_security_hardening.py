# Issue 13: shared counters for the login limit and the throttle of repeated
# denied audit rows; when each audit event was inserted (how long it waited to be sealed).

import django.db.models.functions.datetime
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("rollouts", "0009_heartbeats")]

    operations = [
        migrations.AddField(
            model_name="event",
            name="recorded",
            field=models.DateTimeField(db_default=django.db.models.functions.datetime.Now(), editable=False),
        ),
        migrations.CreateModel(
            name="RateCounter",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("scope", models.CharField(choices=[("login-address", "Login Address"), ("login-user", "Login User"),
                                                    ("denied", "Denied")], max_length=32)),
                ("key", models.CharField(max_length=512)),
                ("window_start", models.DateTimeField(db_index=True)),
                ("count", models.PositiveIntegerField(default=0)),
            ],
            options={
                "constraints": [models.UniqueConstraint(fields=("scope", "key"), name="ratecounter_scope_key")],
            },
        ),
    ]
