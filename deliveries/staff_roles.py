"""Staff roles: the groups a staff member is put in, and the permissions each gives.

Operators run the day: compose messages, edit templates, contacts, lists, segments and campaigns, launch, pause,
resume and cancel campaigns, cancel and retry messages (in the console's queue monitor too), release messages the
cost guard held and raise its spend caps, settle messages that need review, and add an address to the suppression
list by hand. Viewers read the same pages, the queue monitor
included, and change nothing. What neither group gets is for superusers only: API keys, lifting a suppression, the
audit trail, django-rq's raw dashboard of RQ jobs, deleting content.

The groups are created by a data migration (deliveries' `staff_roles`) with `staff_roles_ensure`, which only ever adds
permissions: one granted to a group by hand stays. A later change to a role needs a migration calling it again, with
the roles as they are then written into the migration (a migration runs against the models of its time).
"""

from __future__ import annotations

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions

OPERATORS = "Operators"
VIEWERS = "Viewers"

# What staff read: every model with an admin page, except the superusers' (API keys, the audit trail).
READABLE = {
    "content": ["messagetemplate", "messagetemplatetranslation"],
    "deliveries": ["message", "suppression", "inboundmessage", "batch"],
    "campaigns": ["contact", "contactlist", "segment", "campaign", "campaignstep"],
}
# What operators write (add and change); batches are made by the API and send_bulk, messages by compose only.
EDITABLE = {
    "content": ["messagetemplate", "messagetemplatetranslation"],
    "campaigns": [
        "contact",
        "contactlist",
        "segment",
        "campaign",
        "campaignstep",
    ],
}


def _view(models: dict[str, list[str]]) -> list[str]:
    return [f"{app}.view_{model}" for app, names in models.items() for model in names]


# The console's pages: the queue monitor (a permission of its own, console/models.py) and the alerts' history.
CONSOLE_PAGES = ["console.view_queue_monitor", "console.view_alert", "console.view_alertevent"]
# The cost guard's spend caps and price list: everyone on staff sees them; operators raise caps (docs/guard.md);
# prices are changed by superusers.
SPEND_CAPS = ["guard.view_spendcap", "guard.view_price"]

ROLES: dict[str, list[str]] = {
    VIEWERS: [*_view(READABLE), *CONSOLE_PAGES, *SPEND_CAPS],
    OPERATORS: [
        *_view(READABLE),
        *CONSOLE_PAGES,
        *SPEND_CAPS,
        "guard.change_spendcap",  # raising a cap re-admits what it held; adding or removing one is for superusers
        "deliveries.release_held_message",
        *(f"{app}.{verb}_{model}" for app, names in EDITABLE.items() for model in names for verb in ("add", "change")),
        # Follow-up steps and translations are rows of the campaign and template forms: removing one is editing.
        "campaigns.delete_campaignstep",
        "content.delete_messagetemplatetranslation",
        "deliveries.add_message",  # the compose page
        "deliveries.cancel_message",
        "deliveries.retry_message",
        "deliveries.review_message",
        "deliveries.add_suppression",  # blocking an address is safe; lifting one is for superusers
        "campaigns.launch_campaign",
        "campaigns.pause_campaign",
        "campaigns.cancel_campaign",
    ],
}


def staff_roles_ensure(apps=global_apps, *, using: str = "default", roles: dict[str, list[str]] = ROLES) -> None:
    """Create the groups of `roles` if missing and give each its permissions. Idempotent; never removes one.

    Works on a fresh database inside a migration (`apps` is then the migration's state): permissions are normally
    created after the last migration (post_migrate), so this creates those of the apps involved first.
    """
    for label in {name.split(".")[0] for names in roles.values() for name in names}:
        app_config = apps.get_app_config(label)
        models_module = getattr(app_config, "models_module", None)
        app_config.models_module = models_module or True  # a migration's app stub has none; create_permissions asks
        try:
            create_permissions(app_config, verbosity=0, using=using, apps=apps)
        finally:
            app_config.models_module = models_module
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, permissions in roles.items():
        wanted = {tuple(permission.split(".")) for permission in permissions}
        found: dict[tuple[str, ...], int] = {
            (app_label, codename): pk
            for pk, app_label, codename in Permission.objects.using(using)
            .filter(codename__in={codename for _, codename in wanted})
            .values_list("pk", "content_type__app_label", "codename")
        }
        missing = wanted - found.keys()
        if missing:
            raise LookupError(f"Role {name}: no such permission {', '.join(sorted('.'.join(m) for m in missing))}")
        group, _ = Group.objects.using(using).get_or_create(name=name)
        group.permissions.add(*(found[key] for key in wanted))
