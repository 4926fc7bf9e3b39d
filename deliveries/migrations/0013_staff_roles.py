from django.db import migrations

from deliveries.staff_roles import staff_roles_ensure


def create_staff_roles(apps, schema_editor):
    staff_roles_ensure(apps, using=schema_editor.connection.alias)


class Migration(migrations.Migration):
    """The Operators and Viewers groups (deliveries/staff_roles.py). Reversing leaves them: people may be in them."""

    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("campaigns", "0008_campaign_steps"),
        ("deliveries", "0012_audit_entry"),
    ]

    operations = [migrations.RunPython(create_staff_roles, migrations.RunPython.noop)]
