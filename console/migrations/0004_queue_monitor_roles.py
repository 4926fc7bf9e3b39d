from django.db import migrations

from deliveries.staff_roles import staff_roles_ensure

# As this migration grants it (deliveries/staff_roles.py's CONSOLE_PAGES names it for later databases too).
ROLES = {"Viewers": ["console.view_queue_monitor"], "Operators": ["console.view_queue_monitor"]}


def grant_queue_monitor(apps, schema_editor):
    staff_roles_ensure(apps, using=schema_editor.connection.alias, roles=ROLES)


class Migration(migrations.Migration):
    """Operators and Viewers see the queue monitor; acting there still takes deliveries' cancel and retry."""

    dependencies = [
        ("console", "0003_queue_monitor_permission"),
        ("deliveries", "0013_staff_roles"),
    ]

    operations = [migrations.RunPython(grant_queue_monitor, migrations.RunPython.noop)]
