import django.db.models.deletion
from django.db import migrations, models

# (old app label, new app label, model name)
MOVED = [
    ("campaigns", "content", "messagetemplate"),
    ("campaigns", "content", "messagetemplatetranslation"),
    ("campaigns", "deliveries", "batch"),
]


def _move(apps, schema_editor, moves):
    """Give each moved model's content type its new app label, so its permissions (and the groups holding them)
    follow it, and name the new label in the audit trail's targets."""
    using = schema_editor.connection.alias
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    AuditEntry = apps.get_model("deliveries", "AuditEntry")
    for old_app, new_app, model in moves:
        old = ContentType.objects.using(using).filter(app_label=old_app, model=model).first()
        new = ContentType.objects.using(using).filter(app_label=new_app, model=model).first()
        if old is not None and new is not None:
            # Both exist when a partial `migrate` let post_migrate create the new one: keep the old one's
            # permissions, which groups and users hold, under the new label.
            Permission.objects.using(using).filter(content_type=new).delete()
            new.delete()
        if old is not None:
            old.app_label = new_app
            old.save(update_fields=["app_label"])
        AuditEntry.objects.using(using).filter(target_type=f"{old_app}.{model}").update(
            target_type=f"{new_app}.{model}"
        )
    ContentType.objects.clear_cache()


def content_types_rename(apps, schema_editor):
    _move(apps, schema_editor, MOVED)


def content_types_restore(apps, schema_editor):
    _move(apps, schema_editor, [(new, old, model) for old, new, model in MOVED])


class Migration(migrations.Migration):
    """Templates (now content's) and batches (now deliveries') leave this app's state; their tables, rows and
    permissions stay: the content types are renamed to the new apps, and so are audit entries' targets."""


    dependencies = [
        ('auth', '0012_alter_user_first_name_max_length'),
        ('campaigns', '0008_campaign_steps'),
        ('content', '0001_initial'),
        ('contenttypes', '0002_remove_content_type_name'),
        ('deliveries', '0014_batch_moved_from_campaigns'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            # The tables stay as they are: only Django's idea of which app the models belong to changes.
            database_operations=[],
            state_operations=[
                migrations.AlterField(
                    model_name='campaign',
                    name='template',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='campaigns', to='content.messagetemplate'),
                ),
                migrations.AlterField(
                    model_name='campaignstep',
                    name='template',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='campaign_steps', to='content.messagetemplate'),
                ),
                migrations.RemoveField(
                    model_name='messagetemplatetranslation',
                    name='template',
                ),
                migrations.DeleteModel(
                    name='Batch',
                ),
                migrations.DeleteModel(
                    name='MessageTemplate',
                ),
                migrations.DeleteModel(
                    name='MessageTemplateTranslation',
                ),
            ],
        ),
        migrations.RunPython(content_types_rename, content_types_restore),
    ]
