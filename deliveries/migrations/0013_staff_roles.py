from django.db import migrations

from deliveries.staff_roles import staff_roles_ensure

# The roles as this migration made them, by the app labels of the time (templates and batches were campaigns'):
# deliveries/staff_roles.py's ROLES name today's labels, which this migration's models do not have.
_CAMPAIGNS_READ = [
    "messagetemplate",
    "messagetemplatetranslation",
    "contact",
    "contactlist",
    "segment",
    "campaign",
    "campaignstep",
    "batch",
]
_CAMPAIGNS_WRITE = [name for name in _CAMPAIGNS_READ if name != "batch"]
_READ = [
    *(f"deliveries.view_{name}" for name in ["message", "suppression", "inboundmessage"]),
    *(f"campaigns.view_{name}" for name in _CAMPAIGNS_READ),
]
ROLES = {
    "Viewers": _READ,
    "Operators": [
        *_READ,
        *(f"campaigns.{verb}_{name}" for name in _CAMPAIGNS_WRITE for verb in ("add", "change")),
        "campaigns.delete_campaignstep",
        "campaigns.delete_messagetemplatetranslation",
        "deliveries.add_message",
        "deliveries.cancel_message",
        "deliveries.retry_message",
        "deliveries.review_message",
        "deliveries.add_suppression",
        "campaigns.launch_campaign",
        "campaigns.pause_campaign",
        "campaigns.cancel_campaign",
    ],
}


def create_staff_roles(apps, schema_editor):
    staff_roles_ensure(apps, using=schema_editor.connection.alias, roles=ROLES)


class Migration(migrations.Migration):
    """The Operators and Viewers groups (deliveries/staff_roles.py). Reversing leaves them: people may be in them."""

    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("campaigns", "0008_campaign_steps"),
        ("deliveries", "0012_audit_entry"),
    ]

    operations = [migrations.RunPython(create_staff_roles, migrations.RunPython.noop)]
