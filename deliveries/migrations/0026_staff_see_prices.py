from django.db import migrations

from deliveries.staff_roles import staff_roles_ensure

# As this migration grants them (deliveries/staff_roles.py names them for later databases too): the price list is
# what a held message's reason and the cost estimates point staff to; changing it stays with superusers.
ROLES = {"Viewers": ["guard.view_price"], "Operators": ["guard.view_price"]}


def grant_price_view(apps, schema_editor):
    staff_roles_ensure(apps, using=schema_editor.connection.alias, roles=ROLES)


class Migration(migrations.Migration):
    dependencies = [
        ("deliveries", "0025_message_spend_counted"),
        ("guard", "0002_spend_cap"),
    ]

    operations = [migrations.RunPython(grant_price_view, migrations.RunPython.noop)]
