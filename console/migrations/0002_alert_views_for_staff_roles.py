from django.db import migrations

from deliveries.staff_roles import OPERATORS, VIEWERS, staff_roles_ensure

# Every staff member sees the alerts firing on the dashboard; the groups also read their history (read-only).
ALERT_VIEWS = ["console.view_alert", "console.view_alertevent"]


def grant(apps, schema_editor):
    staff_roles_ensure(apps, using=schema_editor.connection.alias, roles={VIEWERS: ALERT_VIEWS, OPERATORS: ALERT_VIEWS})


class Migration(migrations.Migration):
    dependencies = [
        ("console", "0001_alerts"),
        ("deliveries", "0013_staff_roles"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
